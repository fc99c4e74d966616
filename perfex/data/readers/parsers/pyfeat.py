"""py-feat Fex CSV (v1 and v2): one row per face per processed frame, AUs as probabilities; one clip per face."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ....core.schema import FPS
from .arrowcsv import numbers, read_whole_file
from .frames import FrameTable, frame_part
from ..options import ReadOptions
from ..parts import InputFile, Part
from .perfex_long import require_columns


def read_pyfeat(source: InputFile, options: ReadOptions, keep_rows: bool = False) -> Part:
    """Faces by ``Identity`` when filled, else by their order within each frame; rows with no face (all NaN) or a
    FaceScore under ``min_confidence`` are dropped and counted; time is ``frame`` / 30 fps."""
    raw = source.sniffed.raw_names()
    columns = options.columns_for(tuple(source.sniffed.extractor.au_names))
    names = require_columns(source, raw, columns)
    types = {raw["frame"]: pa.float64(), raw["FaceScore"]: pa.float64(), **{n: pa.float32() for n in names}}
    if "Identity" in raw:
        types[raw["Identity"]] = pa.string()
    table = read_whole_file(source, types, keep_rows)
    frame = numbers(table.column(raw["frame"]))
    score = numbers(table.column(raw["FaceScore"]))
    keep = np.isfinite(score) & (score >= options.min_confidence) & np.isfinite(frame)
    identity = table.column(raw["Identity"]).to_numpy(zero_copy_only=False) if "Identity" in raw else None
    faces = _by_identity(identity) if identity is not None and any(v for v in identity.tolist()) else _by_order(frame)
    frames = FrameTable(table, names, np.nan_to_num(frame) / FPS, keep, faces)
    return frame_part(source, frames, options, columns, keep_rows)


def _by_identity(identity: np.ndarray) -> np.ndarray:
    """The Identity of each row; rows without one (frames with no face) take the last identity seen."""
    values = [v or None for v in identity.tolist()]
    last = next(v for v in values if v)
    for i, value in enumerate(values):
        values[i] = last = value or last
    return np.array(values, dtype=object)


def _by_order(frame: np.ndarray) -> np.ndarray | None:
    """'face<k>' for the k-th row of each frame, or None when no frame holds two faces."""
    if len(frame) == 0:
        return None
    starts = np.flatnonzero(np.concatenate(([True], frame[1:] != frame[:-1])))
    rank = np.arange(len(frame)) - np.repeat(starts, np.diff(np.append(starts, len(frame))))
    return None if rank.max() == 0 else np.array([f"face{k}" for k in rank.tolist()], dtype=object)
