"""Deploy's per-clip table as plain columns (no pandas on the deploy path): build, join, count and write as CSV."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from typing import TextIO

import numpy as np

from ..core.clips import ClipSet
from ..data.readers import Unreadable
from ..core.schema import BIG_FIVE, CONTINUOUS, FILE_COLUMN, ID_COLUMN, Target, Targets

IDENTITY_COLUMNS = [ID_COLUMN, FILE_COLUMN, "n_frames", "n_dropped_frames", "n_windows", "status", "note"]
FLOAT_FORMAT = "%.6g"
_PROBABILITY = re.compile(r"^p_(.+)_(\d+)$")

ClipRows = dict[str, np.ndarray]  # column name -> one value per clip, columns in clip_columns order


def probability_columns(targets: Targets = BIG_FIVE) -> list[str]:
    """``p_<target>_<k>`` for every level k of every level target."""
    return [f"p_{t.name}_{k}" for t in targets if not t.continuous for k in range(t.levels)]


def score_columns(targets: Targets = BIG_FIVE) -> list[str]:
    """``<target>_score`` (the expected level value) of every level target."""
    return [f"{t.name}_score" for t in targets if not t.continuous]


def clip_columns(targets: Targets = BIG_FIVE) -> list[str]:
    """The per-clip CSV's columns: identity and status, each target's value, the level targets' expected scores and
    level probabilities."""
    return [*IDENTITY_COLUMNS, *targets.names, *score_columns(targets), *probability_columns(targets)]


def deploy_targets(columns: Sequence[str]) -> Targets | None:
    """What a deploy CSV predicts: a level target ``NAME`` per ``p_NAME_k`` columns (K of them), a continuous one per
    other value column; None when ``columns`` lack the deploy's identity columns (not a deploy CSV) or name no target."""
    columns = [str(c).strip() for c in columns]
    if not set(IDENTITY_COLUMNS) <= set(columns):
        return None
    levels: dict[str, int] = {}
    for column in columns:
        if match := _PROBABILITY.match(column):
            levels[match[1]] = max(levels.get(match[1], 0), int(match[2]) + 1)
    derived = {f"{name}_score" for name in levels} | {f"p_{name}_{k}" for name, top in levels.items() for k in range(top)}
    names = [c for c in columns if c not in IDENTITY_COLUMNS and c not in derived]
    return Targets(tuple(Target(name, levels.get(name, CONTINUOUS)) for name in names)) if names else None


PROB_COLUMNS = probability_columns()
SCORE_COLUMNS = score_columns()
CLIP_COLUMNS = clip_columns()


def clip_rows(clips: ClipSet, status: np.ndarray, windows: np.ndarray, probs: np.ndarray,
              targets: Targets = BIG_FIVE) -> ClipRows:
    """The per-clip rows: identity, frame counts, status, each target's value (a level target's most probable level
    on its grid, a continuous target's value), the level targets' expected scores and level probabilities."""
    n = len(clips)
    predicted = ~np.isnan(probs[:, 0, 0])
    grid_step = np.array([max(t.levels - 1, 1) for t in targets], dtype=np.float64)
    values = np.full((n, len(targets)), np.nan)
    scores = np.full((n, len(targets)), np.nan)
    if predicted.any():
        scores[predicted] = targets.scores(probs[predicted])
        values[predicted] = np.where(targets.continuous_mask, scores[predicted],
                                     probs[predicted].argmax(axis=2) / grid_step)
    levelled = [t for t, target in enumerate(targets) if not target.continuous]
    rows: ClipRows = {ID_COLUMN: np.asarray(clips.ids, dtype=object), FILE_COLUMN: np.asarray(clips.files, dtype=object),
                      "n_frames": np.asarray(clips.lengths), "n_dropped_frames": np.asarray(clips.dropped_frames),
                      "n_windows": np.asarray(windows), "status": np.asarray(status, dtype=object),
                      "note": np.full(n, "", dtype=object)}
    rows.update(zip(targets.names, values.T))
    rows.update(zip(score_columns(targets), scores[:, levelled].T))
    probabilities = [probs[:, t, : targets[t].levels].astype(np.float64) for t in levelled]
    rows.update(zip(probability_columns(targets), np.concatenate(probabilities, axis=1).T if probabilities else []))
    return rows


def unreadable_rows(files: list[Unreadable], targets: Targets = BIG_FIVE) -> ClipRows:
    """One row per input file that could not be read: accounted for, not predicted."""
    n = len(files)
    rows: ClipRows = {ID_COLUMN: np.array([u.id for u in files], dtype=object),
                      FILE_COLUMN: np.array([u.file for u in files], dtype=object),
                      "n_frames": np.zeros(n, dtype=np.int64), "n_dropped_frames": np.zeros(n, dtype=np.int64),
                      "n_windows": np.zeros(n, dtype=np.int64), "status": np.full(n, "unreadable", dtype=object),
                      "note": np.array([u.reason for u in files], dtype=object)}
    rows.update((name, np.full(n, np.nan)) for name in clip_columns(targets) if name not in rows)
    return rows


def join_rows(parts: list[ClipRows]) -> ClipRows:
    """The rows of ``parts`` one after another (no parts: no rows)."""
    if not parts:
        return unreadable_rows([])
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def trait_levels(rows: ClipRows, targets: Targets = BIG_FIVE) -> np.ndarray:
    """The target columns (a level's grid value, a continuous value; NaN where not predicted) as [N, targets] floats."""
    return np.column_stack([rows[name] for name in targets.names]).astype(np.float64)


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
