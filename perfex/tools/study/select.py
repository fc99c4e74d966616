"""Choose which deployed clips people rate: most uncertain (active learning), spread over predicted levels, or random."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ...infer.clip_rows import PROB_COLUMNS, deploy_targets, probability_columns, score_columns
from ...core.errors import PerfexError
from ...core.schema import BIG_FIVE, FILE_COLUMN, ID_COLUMN, N_LEVELS, TRAITS, Targets
from ...data.splits import source_video

STRATEGIES = ("uncertain", "stratified", "random")
UNCERTAINTIES = ("entropy", "margin")
PREDICTED = ("ok", "windowed", "short_predicted")


def rated_targets(columns: Sequence[str], path: str) -> Targets:
    """What a study rates: the deploy CSV's targets (the Big Five for a CSV without the deploy's identity columns);
    raters answer level targets only, so a continuous target is refused."""
    targets = deploy_targets(columns) or BIG_FIVE
    continuous = [t.name for t in targets if t.continuous]
    if continuous:
        raise PerfexError(f"{path} predicts continuous target(s) {', '.join(continuous)}; user_study.py has raters answer "
                          "level targets only (docs/user_study.md): deploy a model of level targets (NAME or NAME:K)")
    return targets


def read_predictions(path: str | Path) -> tuple[pd.DataFrame, Targets]:
    """The predicted clips of a deploy per-clip CSV (statuses without a prediction are left out) and its targets."""
    path = Path(path)
    if not path.is_file():
        raise PerfexError(f"{path} does not exist; pass the per-clip CSV written by *_deploy.py --out")
    try:
        frame = pd.read_csv(path, dtype={ID_COLUMN: str, FILE_COLUMN: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise PerfexError(f"{path} could not be read as CSV ({str(err).splitlines()[0]}); pass a deploy per-clip CSV") from None
    targets = rated_targets(frame.columns, str(path))
    wanted = (ID_COLUMN, FILE_COLUMN, "status", *targets.names, *score_columns(targets), *probability_columns(targets))
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise PerfexError(f"{path} lacks the deploy columns {', '.join(missing[:6])}; pass the per-clip CSV of *_deploy.py")
    frame = frame[frame["status"].isin(PREDICTED)].reset_index(drop=True)
    if frame.empty:
        raise PerfexError(f"{path} holds no predicted clip (every status is too_short or no_frames)")
    return frame, targets


def probabilities(frame: pd.DataFrame, targets: Targets = BIG_FIVE) -> np.ndarray:
    """Predicted level probabilities [clips, targets, L] (a target of fewer levels zero-padded to L)."""
    if targets.is_big_five:
        return frame[PROB_COLUMNS].to_numpy(dtype=np.float64).reshape(len(frame), len(TRAITS), N_LEVELS)
    probs = np.zeros((len(frame), len(targets), targets.n_levels))
    for t, target in enumerate(targets):
        probs[:, t, : target.levels] = frame[probability_columns(Targets((target,)))].to_numpy(dtype=np.float64)
    return probs


def uncertainty(probs: np.ndarray, kind: str, targets: Targets = BIG_FIVE) -> np.ndarray:
    """Per clip, averaged over targets: normalised entropy, or 1 - (top probability - runner-up); 1 = knows nothing."""
    if not targets.is_big_five:  # each target on its own K levels
        return np.mean([uncertainty(probs[:, t : t + 1, : target.levels], kind) for t, target in enumerate(targets)], axis=0)
    if kind == "entropy":
        p = np.clip(probs, 1e-12, 1.0)
        per_trait = -(p * np.log(p)).sum(axis=2) / np.log(probs.shape[2])
    else:
        top = np.sort(probs, axis=2)
        per_trait = 1.0 - (top[:, :, -1] - top[:, :, -2])
    return per_trait.mean(axis=1)


def _take(order: np.ndarray, sources: np.ndarray, n: int, per_source: int | None) -> list[int]:
    """The first ``n`` clips of ``order`` with at most ``per_source`` per source video."""
    taken, used = [], {}
    for index in order:
        if per_source is not None and used.get(sources[index], 0) >= per_source:
            continue
        used[sources[index]] = used.get(sources[index], 0) + 1
        taken.append(int(index))
        if len(taken) == n:
            break
    return taken


def _stratified(levels: np.ndarray, sources: np.ndarray, n: int, per_source: int | None, rng: np.random.Generator) -> list[int]:
    """Greedy: each pick is the clip whose predicted levels are least covered so far, summed over targets."""
    n_targets = levels.shape[1]
    counts = np.zeros((n_targets, max(N_LEVELS, int(levels.max(initial=0)) + 1)))
    taken, used = [], {}
    free = np.ones(len(levels), dtype=bool)
    tiebreak = rng.random(len(levels))
    while len(taken) < n and free.any():
        cost = counts[np.arange(n_targets), levels].sum(axis=1) + tiebreak
        index = int(np.argmin(np.where(free, cost, np.inf)))
        free[index] = False
        if per_source is not None and used.get(sources[index], 0) >= per_source:
            continue
        used[sources[index]] = used.get(sources[index], 0) + 1
        counts[np.arange(n_targets), levels[index]] += 1
        taken.append(index)
    return taken


def choose(frame: pd.DataFrame, strategy: str, n: int, *, per_source: int | None = None, kind: str = "entropy",
           seed: int = 0, targets: Targets = BIG_FIVE) -> tuple[list[int], list[str]]:
    """Rows of ``frame`` to rate and why each was chosen."""
    if n < 1:
        raise PerfexError(f"--n {n}: pick at least one clip")
    rng = np.random.default_rng(seed)
    sources = np.array([source_video(f) for f in frame[FILE_COLUMN]], dtype=object)
    if strategy == "uncertain":
        score = uncertainty(probabilities(frame, targets), kind, targets)
        taken = _take(np.argsort(-score, kind="stable"), sources, n, per_source)
        reasons = [f"uncertain: {kind} {score[i]:.3f} (rank {r + 1})" for r, i in enumerate(taken)]
    elif strategy == "stratified":
        steps = np.array([t.levels - 1 for t in targets], dtype=np.float64)
        levels = np.rint(frame[list(targets.names)].to_numpy(dtype=np.float64) * steps).astype(np.int64)
        taken = _stratified(levels, sources, n, per_source, rng)
        short = [t[0] for t in targets.names] if targets.is_big_five else [f"{t}=" for t in targets.names]
        reasons = ["stratified: predicted levels " + " ".join(f"{s}{levels[i, k]}" for k, s in enumerate(short))
                   for i in taken]
    elif strategy == "random":
        taken = _take(rng.permutation(len(frame)), sources, n, per_source)
        reasons = ["random draw"] * len(taken)
    else:
        raise PerfexError(f"unknown --strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if len(taken) < n:
        limit = f" with --per-source {per_source}" if per_source is not None else ""
        raise PerfexError(f"only {len(taken)} predicted clips can be chosen{limit}; lower --n to {len(taken)} or relax --per-source")
    return taken, reasons
