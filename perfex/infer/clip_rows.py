"""Deploy's per-clip table as plain columns (no pandas on the deploy path): build, join, count and write as CSV."""

from __future__ import annotations

import csv
from typing import TextIO

import numpy as np

from ..core.clips import ClipSet
from ..data.readers import Unreadable
from ..core.schema import FILE_COLUMN, ID_COLUMN, N_LEVELS, TRAITS
from ..core.windows import expected_scores

PROB_COLUMNS = [f"p_{trait}_{level}" for trait in TRAITS for level in range(N_LEVELS)]
SCORE_COLUMNS = [f"{t}_score" for t in TRAITS]
CLIP_COLUMNS = [ID_COLUMN, FILE_COLUMN, "n_frames", "n_dropped_frames", "n_windows", "status", "note", *TRAITS,
                *SCORE_COLUMNS, *PROB_COLUMNS]
FLOAT_FORMAT = "%.6g"

ClipRows = dict[str, np.ndarray]  # column name -> one value per clip, columns in CLIP_COLUMNS order


def clip_rows(clips: ClipSet, status: np.ndarray, windows: np.ndarray, probs: np.ndarray) -> ClipRows:
    """The per-clip rows: identity, frame counts, status, levels (level / 4), expected scores, all 25 probabilities."""
    n = len(clips)
    predicted = ~np.isnan(probs[:, 0, 0])
    levels = np.where(predicted[:, None], probs.argmax(axis=2) / (N_LEVELS - 1), np.nan)
    scores = np.full((n, len(TRAITS)), np.nan)
    if predicted.any():
        scores[predicted] = expected_scores(probs[predicted])
    rows: ClipRows = {ID_COLUMN: np.asarray(clips.ids, dtype=object), FILE_COLUMN: np.asarray(clips.files, dtype=object),
                      "n_frames": np.asarray(clips.lengths), "n_dropped_frames": np.asarray(clips.dropped_frames),
                      "n_windows": np.asarray(windows), "status": np.asarray(status, dtype=object),
                      "note": np.full(n, "", dtype=object)}
    rows.update(zip(TRAITS, levels.T))
    rows.update(zip(SCORE_COLUMNS, scores.T))
    rows.update(zip(PROB_COLUMNS, probs.reshape(n, -1).astype(np.float64).T))
    return rows


def unreadable_rows(files: list[Unreadable]) -> ClipRows:
    """One row per input file that could not be read: accounted for, not predicted."""
    n = len(files)
    rows: ClipRows = {ID_COLUMN: np.array([u.id for u in files], dtype=object),
                      FILE_COLUMN: np.array([u.file for u in files], dtype=object),
                      "n_frames": np.zeros(n, dtype=np.int64), "n_dropped_frames": np.zeros(n, dtype=np.int64),
                      "n_windows": np.zeros(n, dtype=np.int64), "status": np.full(n, "unreadable", dtype=object),
                      "note": np.array([u.reason for u in files], dtype=object)}
    rows.update((name, np.full(n, np.nan)) for name in CLIP_COLUMNS if name not in rows)
    return rows


def join_rows(parts: list[ClipRows]) -> ClipRows:
    """The rows of ``parts`` one after another (no parts: no rows)."""
    if not parts:
        return unreadable_rows([])
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def trait_levels(rows: ClipRows) -> np.ndarray:
    """The trait columns (level / 4, NaN where not predicted) as [N, 5] floats."""
    return np.column_stack([rows[t] for t in TRAITS]).astype(np.float64)


def write_rows(handle: TextIO, rows: ClipRows) -> None:
    """Append ``rows`` to a CSV: integers as they are, floats as %.6g, NaN as an empty field, text quoted as needed."""
    columns = []
    for values in rows.values():
        if values.dtype.kind == "f":
            text = np.char.mod(FLOAT_FORMAT, values).astype(object)
            text[np.isnan(values)] = ""
            columns.append(text)
        else:
            columns.append(values.astype(str) if values.dtype.kind in "iub" else values)
    csv.writer(handle, lineterminator="\n").writerows(zip(*columns))
