"""Whole-model AU importance per target: mean |attribution| and permutation importance, with grouped bootstrap CIs.

Permutation importance scores each target as its kind allows: a level target (a trait, binary or K levels) by
accuracy and quadratic-weighted kappa (ranked by the QWK drop; with two levels QWK is Cohen's kappa), a continuous
target by Pearson r and mean absolute error in the label's units (ranked by the drop in r). Tables name their target
column ``trait`` for the Big Five and ``target`` otherwise.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..core.clips import ClipSet
from ..core.errors import PerfexError
from ..core.metrics import bootstrap_interval
from ..core.schema import BIG_FIVE, N_LEVELS, Targets

PERMUTATION_MODES = ("shuffle", "mean")
LEVEL_SCORES = ("accuracy_drop", "qwk_drop")  # a level target's permutation columns
CONTINUOUS_SCORES = ("pearson_r_drop", "mae_rise")  # a continuous target's (MAE in the label's units)
SCORES = LEVEL_SCORES + CONTINUOUS_SCORES
RANK_SCORE = {False: "qwk_drop", True: "pearson_r_drop"}  # the ranking column, by ``Target.continuous``


def name_column(targets: Targets) -> str:
    """The importance tables' target column: ``trait`` for the Big Five, else ``target``."""
    return "trait" if targets.is_big_five else "target"


def ranked_by(permutation: pd.DataFrame, target: str) -> str:
    """The column that ranks ``target`` in a permutation table: ``pearson_r_drop`` for a continuous target (whose level
    scores are NaN), else ``qwk_drop``."""
    rows = permutation[permutation.iloc[:, 0] == target]
    return "qwk_drop" if "accuracy_drop" in rows and rows["accuracy_drop"].notna().any() else "pearson_r_drop"


def _ranked(table: pd.DataFrame, key: pd.Series, targets: Targets) -> pd.DataFrame:
    """``table`` with ``rank`` (1 = largest ``key`` within each target; NaN last), sorted by target then rank."""
    column = name_column(targets)
    table["rank"] = key.groupby(table[column], sort=False).rank(ascending=False, method="first", na_option="bottom")
    table["rank"] = table["rank"].astype(int)
    order = {name: k for k, name in enumerate(targets.names)}
    return table.sort_values([column, "rank"], key=lambda c: c.map(order) if c.name == column else c, ignore_index=True)


def _grid(targets: Targets, n_features: int, feature_names: list[str]) -> pd.DataFrame:
    """One row per (target, feature), target-major."""
    t, f = np.meshgrid(np.arange(len(targets)), np.arange(n_features), indexing="ij")
    return pd.DataFrame({name_column(targets): np.asarray(targets.names)[t.ravel()],
                         "feature": np.asarray(feature_names)[f.ravel()]})


def attribution_importance(attributions: list[np.ndarray], feature_names: list[str], groups: np.ndarray,
                           n_boot: int = 1000, seed: int = 0, targets: Targets = BIG_FIVE) -> pd.DataFrame:
    """Per target and feature: mean over clips of the clip's mean |attribution| over frames, 95% CI, rank (1 = most)."""
    per_clip = np.stack([np.abs(a).mean(axis=0) for a in attributions])  # [N, targets, F]
    low, high = bootstrap_interval(lambda rows: per_clip[rows].mean(axis=0), groups, n_boot, seed)
    table = _grid(targets, len(feature_names), feature_names)
    table["mean_abs_attribution"] = per_clip.mean(axis=0).ravel()
    table["mean_abs_attribution_low"], table["mean_abs_attribution_high"] = low.ravel(), high.ravel()
    return _ranked(table, table["mean_abs_attribution"], targets)


def _donor_rows(clips: ClipSet, donors: np.ndarray) -> np.ndarray:
    """Frame rows giving clip i the series of clip ``donors[i]``, stretched or squeezed to clip i's length."""
    lengths = clips.lengths
    position = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.zeros(0, np.int64)
    donor_of_row = np.repeat(donors, lengths)
    return clips.offsets[donor_of_row] + position * lengths[donor_of_row] // np.repeat(lengths, lengths)


def perturbed(clips: ClipSet, feature: int, mode: str, rng: np.random.Generator, fill: float = 0.0) -> ClipSet:
    """A copy of ``clips`` with one feature destroyed: another clip's series ('shuffle') or the value ``fill`` ('mean')."""
    features = clips.features.copy()
    if mode == "shuffle":
        features[:, feature] = clips.features[_donor_rows(clips, rng.permutation(len(clips))), feature]
    else:
        features[:, feature] = fill
    return ClipSet(**{**clips.__dict__, "features": features})


def _scores(true: np.ndarray, preds: np.ndarray, n_levels: int = N_LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and quadratic-weighted kappa [V, T] of levels ``preds [V, N, T]`` against ``true [N, T]`` (0..n_levels-1)."""
    n_variants, n, n_targets = preds.shape
    cell = (np.arange(n_variants)[:, None, None] * n_targets + np.arange(n_targets)) * n_levels**2
    codes = cell + true[None] * n_levels + preds
    counts = np.bincount(codes.ravel(), minlength=n_variants * n_targets * n_levels**2)
    counts = counts.reshape(n_variants, n_targets, n_levels, n_levels)
    accuracy = np.trace(counts, axis1=2, axis2=3) / max(n, 1)
    expected = counts.sum(axis=3)[..., :, None] * counts.sum(axis=2)[..., None, :] / max(n, 1)
    weights = (np.subtract.outer(np.arange(n_levels), np.arange(n_levels)) ** 2 / (n_levels - 1) ** 2).ravel()
    observed_cost = counts.reshape(n_variants, n_targets, -1) @ weights
    expected_cost = expected.reshape(n_variants, n_targets, -1) @ weights
    with np.errstate(invalid="ignore", divide="ignore"):
        return accuracy, 1 - observed_cost / expected_cost


def _regression_scores(true: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and mean absolute error [V] of values ``preds [V, N]`` against ``true [N]``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        centred, truth = preds - preds.mean(axis=1, keepdims=True), true - true.mean()
        r = centred @ truth / np.sqrt((centred**2).sum(axis=1) * (truth**2).sum())
        return r, np.abs(preds - true).mean(axis=1)


def _drops(true: np.ndarray, preds: np.ndarray, n_features: int, n_repeats: int, targets: Targets) -> np.ndarray:
    """``SCORES`` [4, F, targets]: each score's loss from the unperturbed predictions (variant 0) to each feature's mean
    over repeats (NaN where a score does not apply to a target's kind)."""
    drops = np.full((len(SCORES), n_features, len(targets)), np.nan)

    def loss(score: np.ndarray, rise: bool = False) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a score undefined in every repeat: NaN
            perturbed_mean = np.nanmean(score[1:].reshape(n_features, n_repeats), axis=1)
        return perturbed_mean - score[0] if rise else score[0] - perturbed_mean

    for t, target in enumerate(targets):
        if target.continuous:
            r, mae = _regression_scores(true[:, t], preds[:, :, t])
            drops[2:, :, t] = loss(r), loss(mae, rise=True)
        else:
            accuracy, kappa = _scores(true[:, t : t + 1].astype(np.int64), preds[:, :, t : t + 1].astype(np.int64),
                                      target.levels)
            drops[:2, :, t] = loss(accuracy[:, 0]), loss(kappa[:, 0])
    return drops


def point_predictions(outputs: np.ndarray, targets: Targets) -> np.ndarray:
    """[N, targets] from ``outputs [N, targets, L]``: a level target's most probable level, a continuous target's
    value in the label's units (what permutation importance scores)."""
    levels = targets.predicted_levels(outputs)
    if not targets.any_continuous:
        return levels
    return np.where(targets.continuous_mask, targets.scores(outputs), levels)


def permutation_importance(predict_fn: Callable[[ClipSet], np.ndarray], clips: ClipSet, groups: np.ndarray, *,
                           mode: str = "shuffle", fill: np.ndarray | None = None, n_repeats: int = 5, n_boot: int = 1000,
                           seed: int = 0, targets: Targets | None = None) -> pd.DataFrame:
    """Per target and feature: each score's loss when the feature is destroyed, 95% CIs, rank (by the QWK drop, or the
    Pearson r drop of a continuous target).

    ``predict_fn(clips) -> [N, targets]`` as ``point_predictions``; ``clips`` must be labelled for ``targets`` (default
    ``clips.targets``). 'shuffle' gives each clip another clip's series of that feature (time-stretched to its length;
    ``n_repeats`` permutations, averaged); 'mean' sets it to ``fill[feature]`` (the training mean, i.e. zero after
    normalisation) once.
    """
    targets = targets or clips.targets
    if mode not in PERMUTATION_MODES or (mode == "mean" and fill is None):
        raise PerfexError(f"permutation mode {mode!r}: use 'shuffle', or 'mean' with the training means as fill")
    if clips.levels is None or (clips.levels < 0).any():
        raise PerfexError(f"permutation importance needs labelled clips: give every clip a label for {targets.spec()}")
    repeats = n_repeats if mode == "shuffle" else 1
    rng = np.random.default_rng(seed)
    names = list(clips.feature_names)
    preds = [predict_fn(clips)]
    for f in range(len(names)):
        preds += [predict_fn(perturbed(clips, f, mode, rng, 0.0 if fill is None else float(fill[f]))) for _ in range(repeats)]
    preds_array = np.stack(preds).astype(np.float64)
    continuous = targets.continuous_mask
    true = np.where(continuous, clips.scores if continuous.any() else 0, clips.levels).astype(np.float64)
    drops = _drops(true, preds_array, len(names), repeats, targets)
    lows, highs = bootstrap_interval(lambda rows: _drops(true[rows], preds_array[:, rows], len(names), repeats, targets),
                                     groups, n_boot, seed)
    table = _grid(targets, len(names), names)
    kinds = set(continuous.tolist())
    for k, name in enumerate(SCORES):
        if (name in CONTINUOUS_SCORES) in kinds:
            table[name], table[f"{name}_low"], table[f"{name}_high"] = drops[k].T.ravel(), lows[k].T.ravel(), highs[k].T.ravel()
    table["mode"] = mode
    key = drops[SCORES.index("qwk_drop")].T.ravel()
    key = np.where(np.repeat(continuous, len(names)), drops[SCORES.index("pearson_r_drop")].T.ravel(), key)
    return _ranked(table, pd.Series(key), targets)
