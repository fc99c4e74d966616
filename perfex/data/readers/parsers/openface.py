"""OpenFace 2.x FeatureExtraction / FaceLandmarkVidMulti CSV: one clip per face_id, failed frames dropped."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ....core.errors import PerfexError
from .arrowcsv import RowCollector, all_columns_types, numbers, raise_bad_rows, read_columns
from .frames import FrameTable, frame_part
from ..messages import row_label
from ..options import ReadOptions
from ..parts import InputFile, Part
from .perfex_long import require_columns

def read_openface(source: InputFile, options: ReadOptions, keep_rows: bool = False) -> Part:
    """One clip per face_id (the file's stem when there is one face); failed or low-confidence frames dropped and counted."""
    raw = source.sniffed.raw_names()
    if "timestamp" not in raw:
        raise PerfexError(f"{source.path} looks like OpenFace output but has no 'timestamp' column; "
                          "pass the FeatureExtraction CSV as written")
    columns = options.columns_for(tuple(source.sniffed.extractor.au_names))
    names = require_columns(source, raw, columns)
    quality = [name for name in ("success", "confidence", "face_id") if name in raw]
    types = {raw["timestamp"]: pa.float64(), **{raw[n]: pa.float64() for n in quality}, **{n: pa.float32() for n in names}}
    collector = RowCollector()
    table = read_columns(source.path, source.sniffed, all_columns_types(source.sniffed, types) if keep_rows else types,
                         collector)
    too_long = [row for row in collector.rows if row[1] > row[0]]
    if too_long or (collector.rows and options.nan_policy == "error"):
        raise_bad_rows(source.path, source.sniffed, too_long or collector.rows, "repair or remove that line" if too_long
                       else "pass --nan drop-frames to drop such frames, or repair the file")
    column = lambda name: numbers(table.column(raw[name]))  # noqa: E731
    keep = np.ones(table.num_rows, dtype=bool)
    if "success" in raw:
        keep &= column("success") > 0
    if "confidence" in raw:
        keep &= column("confidence") >= options.min_confidence
    times = column("timestamp")
    if not np.isfinite(times[keep]).all():
        row = int(np.flatnonzero(keep & ~np.isfinite(times))[0])
        raise PerfexError(f"{source.path}: {row_label(0)(row)}, column 'timestamp' is not a finite number; "
                          "OpenFace timestamps are needed: repair the file")
    faces = _faces(column("face_id")) if "face_id" in raw else None
    frames = FrameTable(table, names, times, keep, faces, len(collector.rows))
    return frame_part(source, frames, options, columns, keep_rows)


def _faces(face_id: np.ndarray) -> np.ndarray:
    """'face<k>' per row ('face?' where the id is missing)."""
    return np.array([f"face{int(v)}" if np.isfinite(v) else "face?" for v in face_id.tolist()], dtype=object)
