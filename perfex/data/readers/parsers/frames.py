"""Shared last step of the extractor readers: a frame table (one row per face per frame) -> one clip per face."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ....core.clips import ClipSet
from ....core.schema import ID_COLUMN, TRAITS
from ....core.tables import group_rows
from .arrowcsv import feature_matrix
from ..messages import row_label
from .nan import apply_nan_policy
from ..options import ReadOptions
from ..parts import InputFile, Part, RowBlock


@dataclass
class FrameTable:
    """An extractor file after its own column logic: per-row seconds, which rows are usable, and the face of each
    row (None: one face); ``skipped_rows`` are malformed lines already left out (counted as dropped)."""

    table: pa.Table
    columns: list[str]
    times: np.ndarray
    keep: np.ndarray
    faces: np.ndarray | None = None
    skipped_rows: int = 0


def face_groups(frames: FrameTable) -> tuple[list[str] | None, np.ndarray, np.ndarray]:
    """(face labels or None for one face, rows in face order, offsets)."""
    n = frames.table.num_rows
    if frames.faces is None or len(np.unique(frames.faces)) < 2:
        return None, np.arange(n), np.array([0, n], dtype=np.int64)
    labels, rows, offsets = group_rows(frames.faces)
    return [str(label) for label in labels], rows, offsets


def frame_part(source: InputFile, frames: FrameTable, options: ReadOptions, columns: tuple[str, ...],
               keep_rows: bool) -> Part:
    """One clip per face: usable rows only, times from each clip's first usable frame, the NaN policy applied."""
    labels, rows, offsets = face_groups(frames)
    ids = np.array([source.clip_name] if labels is None else [f"{source.clip_name}#{k}" for k in labels], dtype=object)
    keep = frames.keep[rows]
    kept = rows[keep]
    face_of_row = np.repeat(np.arange(len(ids)), np.diff(offsets))
    counts = np.bincount(face_of_row[keep], minlength=len(ids))
    new_offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(counts, out=new_offsets[1:])
    dropped = np.diff(offsets) - counts
    dropped[0] += frames.skipped_rows
    times = frames.times[kept]
    starts = np.repeat(times[new_offsets[:-1][counts > 0]], counts[counts > 0])
    times = (times - starts).astype(np.float32)
    features = feature_matrix(frames.table, frames.columns)[kept]
    at = row_label(0)
    features, times, new_offsets, dropped = apply_nan_policy(
        features, times, new_offsets, dropped, options.nan_policy, columns, source.path, ids, lambda r: at(int(kept[r])))
    extractor = source.sniffed.extractor
    clips = ClipSet(ids=ids, files=np.array([f"{source.clip_name}.mp4"] * len(ids), dtype=object), offsets=new_offsets,
                    features=features, times=times, feature_names=columns, scores=np.full((len(ids), len(TRAITS)), np.nan),
                    dropped_frames=dropped, origin=[str(source.path)], provenance=extractor.provenance)
    return Part(clips, _row_block(frames, ids, labels) if keep_rows else None)


def _row_block(frames: FrameTable, ids: np.ndarray, labels: list[str] | None) -> RowBlock:
    """Every input row with an ID column first holding the clip id of its face."""
    if labels is None:
        row_ids = np.full(frames.table.num_rows, ids[0], dtype=object)
    else:
        clip_of = dict(zip(labels, ids.tolist()))
        row_ids = np.array([clip_of[face] for face in frames.faces.tolist()], dtype=object)
    table = frames.table.rename_columns([c.strip() for c in frames.table.column_names])
    if ID_COLUMN in table.column_names:
        table = table.drop_columns([ID_COLUMN])
    return RowBlock(table.add_column(0, ID_COLUMN, pa.array(row_ids, type=pa.string())), row_ids)
