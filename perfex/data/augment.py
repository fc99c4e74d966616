"""The original three augmentations, in linear time, with provenance so splits keep copies with their source."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..core.errors import PerfexError
from ..core.schema import FILE_COLUMN, ID_COLUMN
from ..core.tables import group_rows, read_table, write_table

SOURCE_COLUMN = "source_id"
AUGMENTATION_COLUMN = "augmentation"


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply and their parameters (defaults reproduce the original)."""

    subsample_step: int = 2  # keep every n-th frame; 0 disables
    shift_frames: int = 5  # delay by n frames, repeating the first frame; 0 disables
    window_frames: int = 100  # cut non-overlapping windows of n frames; 0 disables
    keep_original: bool = True


def augmentation_rows(n_frames: int, config: AugmentConfig) -> list[tuple[str, np.ndarray]]:
    """Row positions (within one clip) of each augmented copy of a clip with ``n_frames`` frames."""
    frames = np.arange(n_frames)
    copies: list[tuple[str, np.ndarray]] = []
    if config.subsample_step > 1 and n_frames >= config.subsample_step:
        copies.append((f"subsample{config.subsample_step}", frames[:: config.subsample_step]))
    if config.shift_frames > 0 and n_frames > 0:
        copies.append((f"shift{config.shift_frames}", np.maximum(frames - config.shift_frames, 0)))
    if config.window_frames > 0:
        for w in range(n_frames // config.window_frames):
            copies.append((f"window{config.window_frames}_{w}", frames[w * config.window_frames : (w + 1) * config.window_frames]))
    return copies


def augment_table(table: pa.Table, config: AugmentConfig) -> tuple[pa.Table, dict[str, int]]:
    """Append augmented copies of every clip; each copy gets a new integer ID and provenance columns."""
    for column in (ID_COLUMN, FILE_COLUMN):
        if column not in table.column_names:
            raise PerfexError(f"the input has no {column!r} column; augmentation needs PerFeX long CSVs (see data/README.md)")
    if AUGMENTATION_COLUMN in table.column_names:
        raise PerfexError("the input already has an 'augmentation' column: augment the original data, not an augmented file")
    ids = table.column(ID_COLUMN).to_numpy(zero_copy_only=False)
    if ids.dtype.kind not in "iu":
        raise PerfexError(f"column {ID_COLUMN!r} must hold integer clip ids to number the new copies")
    unique_ids, rows_by_clip, offsets = group_rows(ids)
    next_id = int(unique_ids.max()) + 1 if len(unique_ids) else 0
    take, new_ids, sources, kinds = [], [], [], []
    counts: dict[str, int] = {}
    if config.keep_original:
        take.append(np.arange(len(ids)))
        new_ids.append(ids)
        sources.append(ids)
        kinds.append(np.full(len(ids), "none", dtype=object))
    for clip, clip_id in enumerate(unique_ids):
        rows = rows_by_clip[offsets[clip] : offsets[clip + 1]]
        for kind, positions in augmentation_rows(len(rows), config):
            take.append(rows[positions])
            new_ids.append(np.full(len(positions), next_id))
            sources.append(np.full(len(positions), clip_id))
            kinds.append(np.full(len(positions), kind, dtype=object))
            counts[kind.split("_")[0]] = counts.get(kind.split("_")[0], 0) + 1
            next_id += 1
    if not take:
        raise PerfexError("nothing to write: every augmentation is disabled and --no-original was given")
    out = table.take(pa.array(np.concatenate(take)))
    out = out.set_column(out.column_names.index(ID_COLUMN), ID_COLUMN, pa.array(np.concatenate(new_ids)))
    out = out.append_column(SOURCE_COLUMN, pa.array(np.concatenate(sources)))
    out = out.append_column(AUGMENTATION_COLUMN, pa.array(np.concatenate(kinds), type=pa.string()))
    counts["original"] = len(unique_ids) if config.keep_original else 0
    return out, counts


def augment_files(inputs: list[Path], out: Path, config: AugmentConfig) -> dict[str, int]:
    """Read PerFeX CSVs, augment them and write one CSV (``.csv`` or ``.csv.gz``) atomically."""
    table = pa.concat_tables([read_table(path) for path in inputs], promote_options="permissive")
    augmented, counts = augment_table(table, config)
    write_table(augmented, out)
    counts["rows"] = augmented.num_rows
    counts["input_clips"] = len(np.unique(pc.unique(table.column(ID_COLUMN)).to_numpy(zero_copy_only=False)))
    return counts
