"""Whole-model AU importance per trait: mean |attribution| and permutation importance, with grouped bootstrap CIs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..core.clips import ClipSet
from ..core.errors import PerfexError
from ..core.metrics import bootstrap_interval
from ..core.schema import N_LEVELS, TRAITS

PERMUTATION_MODES = ("shuffle", "mean")
_QWK_WEIGHTS = (np.subtract.outer(np.arange(N_LEVELS), np.arange(N_LEVELS)) ** 2 / (N_LEVELS - 1) ** 2).ravel()


def _ranked(table: pd.DataFrame, value: str) -> pd.DataFrame:
    table["rank"] = table.groupby("trait", sort=False)[value].rank(ascending=False, method="first").astype(int)
    return table.sort_values(["trait", "rank"], key=lambda c: c.map(TRAITS.index) if c.name == "trait" else c, ignore_index=True)


def attribution_importance(attributions: list[np.ndarray], feature_names: list[str], groups: np.ndarray,
                           n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per trait and feature: mean over clips of the clip's mean |attribution| over frames, 95% CI, rank (1 = most)."""
    per_clip = np.stack([np.abs(a).mean(axis=0) for a in attributions])  # [N, 5, F]
    low, high = bootstrap_interval(lambda rows: per_clip[rows].mean(axis=0), groups, n_boot, seed)
    t, f = np.meshgrid(np.arange(len(TRAITS)), np.arange(len(feature_names)), indexing="ij")
    table = pd.DataFrame({"trait": np.asarray(TRAITS)[t.ravel()], "feature": np.asarray(feature_names)[f.ravel()],
                          "mean_abs_attribution": per_clip.mean(axis=0).ravel(),
                          "mean_abs_attribution_low": low.ravel(), "mean_abs_attribution_high": high.ravel()})
    return _ranked(table, "mean_abs_attribution")


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


def _scores(true: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy and quadratic-weighted kappa [V, 5] of predictions ``preds [V, N, 5]`` against ``true [N, 5]``."""
    n_variants, n = preds.shape[:2]
    cell = (np.arange(n_variants)[:, None, None] * len(TRAITS) + np.arange(len(TRAITS))) * N_LEVELS**2
    codes = cell + true[None] * N_LEVELS + preds
    counts = np.bincount(codes.ravel(), minlength=n_variants * len(TRAITS) * N_LEVELS**2)
    counts = counts.reshape(n_variants, len(TRAITS), N_LEVELS, N_LEVELS)
    accuracy = np.trace(counts, axis1=2, axis2=3) / max(n, 1)
    expected = counts.sum(axis=3)[..., :, None] * counts.sum(axis=2)[..., None, :] / max(n, 1)
    observed_cost = counts.reshape(n_variants, len(TRAITS), -1) @ _QWK_WEIGHTS
    expected_cost = expected.reshape(n_variants, len(TRAITS), -1) @ _QWK_WEIGHTS
    with np.errstate(invalid="ignore", divide="ignore"):
        return accuracy, 1 - observed_cost / expected_cost


def _drops(true: np.ndarray, preds: np.ndarray, n_features: int, n_repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop in accuracy and QWK [F, 5] from the unperturbed predictions (variant 0) to each feature's mean over repeats."""
    accuracy, kappa = _scores(true, preds)
    shape = (n_features, n_repeats, len(TRAITS))
    return accuracy[0] - accuracy[1:].reshape(shape).mean(axis=1), kappa[0] - np.nanmean(kappa[1:].reshape(shape), axis=1)


def permutation_importance(predict_fn: Callable[[ClipSet], np.ndarray], clips: ClipSet, groups: np.ndarray, *,
                           mode: str = "shuffle", fill: np.ndarray | None = None, n_repeats: int = 5, n_boot: int = 1000,
                           seed: int = 0) -> pd.DataFrame:
    """Per trait and feature: drop in accuracy and QWK when the feature is destroyed, 95% CIs, rank by QWK drop.

    ``predict_fn(clips) -> levels [N, 5]``; ``clips`` must be labelled. 'shuffle' gives each clip another clip's
    series of that feature (time-stretched to its length; ``n_repeats`` permutations, averaged); 'mean' sets it
    to ``fill[feature]`` (the training mean, i.e. zero after normalisation) once.
    """
    if mode not in PERMUTATION_MODES or (mode == "mean" and fill is None):
        raise PerfexError(f"permutation mode {mode!r}: use 'shuffle', or 'mean' with the training means as fill")
    if clips.levels is None or (clips.levels < 0).any():
        raise PerfexError("permutation importance needs labelled clips: every clip must have all five trait levels")
    repeats = n_repeats if mode == "shuffle" else 1
    rng = np.random.default_rng(seed)
    names = list(clips.feature_names)
    preds = [predict_fn(clips)]
    for f in range(len(names)):
        preds += [predict_fn(perturbed(clips, f, mode, rng, 0.0 if fill is None else float(fill[f]))) for _ in range(repeats)]
    preds_array, true = np.stack(preds).astype(np.int64), clips.levels.astype(np.int64)
    accuracy_drop, qwk_drop = _drops(true, preds_array, len(names), repeats)
    lows, highs = bootstrap_interval(lambda rows: np.stack(_drops(true[rows], preds_array[:, rows], len(names), repeats)),
                                     groups, n_boot, seed)
    t, f = np.meshgrid(np.arange(len(TRAITS)), np.arange(len(names)), indexing="ij")
    table = pd.DataFrame({"trait": np.asarray(TRAITS)[t.ravel()], "feature": np.asarray(names)[f.ravel()]})
    for k, (name, point) in enumerate((("accuracy_drop", accuracy_drop), ("qwk_drop", qwk_drop))):
        table[name], table[f"{name}_low"], table[f"{name}_high"] = point.T.ravel(), lows[k].T.ravel(), highs[k].T.ravel()
    table["mode"] = mode
    return _ranked(table, "qwk_drop")
