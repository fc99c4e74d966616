"""LibreFace CSV: one face, frames without a face already left out, AU intensities on 0-5 as au_<n>_intensity."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ....core.schema import FPS
from .arrowcsv import numbers, read_whole_file
from .frames import FrameTable, frame_part
from ..options import ReadOptions
from ..parts import InputFile, Part
from .perfex_long import require_columns


def read_libreface(source: InputFile, options: ReadOptions, keep_rows: bool = False) -> Part:
    """One clip; time is ``frame_idx`` / 30 fps (``frame_time_in_ms`` is not reliably milliseconds)."""
    raw = source.sniffed.raw_names()
    columns = options.columns_for(tuple(source.sniffed.extractor.au_names))
    names = require_columns(source, raw, columns)
    types = {raw["frame_idx"]: pa.float64(), **{n: pa.float32() for n in names}}
    table = read_whole_file(source, types, keep_rows)
    frame = numbers(table.column(raw["frame_idx"]))
    frames = FrameTable(table, names, np.nan_to_num(frame) / FPS, np.isfinite(frame))
    return frame_part(source, frames, options, columns, keep_rows)
