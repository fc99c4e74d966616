"""Inter-rater agreement: ICC(2,k), Krippendorff's ordinal alpha, bootstrap intervals, and raters out of step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...core.metrics import bootstrap_interval


def icc2k(ratings: np.ndarray) -> float:
    """ICC(2,k) of a complete [clips, raters] matrix: two-way random effects, absolute agreement, mean of k raters."""
    n, k = ratings.shape
    grand = ratings.mean()
    ms_rows = k * ((ratings.mean(axis=1) - grand) ** 2).sum() / (n - 1)
    ms_cols = n * ((ratings.mean(axis=0) - grand) ** 2).sum() / (k - 1)
    residual = ratings - ratings.mean(axis=1, keepdims=True) - ratings.mean(axis=0, keepdims=True) + grand
    ms_error = (residual ** 2).sum() / ((n - 1) * (k - 1))
    denominator = ms_rows + (ms_cols - ms_error) / n
    return float((ms_rows - ms_error) / denominator) if denominator > 0 else float("nan")


def ordinal_alpha(ratings: np.ndarray, values: tuple[float, ...]) -> float:
    """Krippendorff's alpha with the ordinal metric for a complete [clips, raters] matrix of answers in ``values``."""
    codes = np.searchsorted(np.asarray(values, dtype=np.float64), ratings)
    m = len(values)
    k = ratings.shape[1]
    counts = np.stack([(codes == c).sum(axis=1) for c in range(m)], axis=1).astype(np.float64)
    coincidence = (counts[:, :, None] * counts[:, None, :]).sum(axis=0) - np.diag(counts.sum(axis=0))
    coincidence /= k - 1
    marginals = coincidence.sum(axis=1)
    total = marginals.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
    low, high = np.minimum.outer(np.arange(m), np.arange(m)), np.maximum.outer(np.arange(m), np.arange(m))
    delta = (cumulative[high + 1] - cumulative[low] - (marginals[low] + marginals[high]) / 2) ** 2
    expected = (np.outer(marginals, marginals) * delta).sum()
    return float(1 - (total - 1) * (coincidence * delta).sum() / expected) if expected > 0 else float("nan")


def clip_interval(statistic: Callable[[np.ndarray], float], ratings: np.ndarray, n_boot: int,
                  seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of ``statistic`` over the rated clips resampled with replacement (each clip its own
    group: the raters rated clips, not source videos); NaN without resamples."""
    if n_boot < 1:
        return float("nan"), float("nan")
    low, high = bootstrap_interval(lambda rows: statistic(ratings[rows]), np.arange(len(ratings)), n_boot, seed)
    return float(low), float(high)


def leave_one_out_r(ratings: np.ndarray) -> np.ndarray:
    """Pearson r of each rater's answers with the mean of the other raters ([raters]; NaN when either is constant)."""
    k = ratings.shape[1]
    out = np.full(k, np.nan)
    for rater in range(k):
        mine = ratings[:, rater]
        others = np.delete(ratings, rater, axis=1).mean(axis=1)
        if mine.std() > 0 and others.std() > 0:
            out[rater] = np.corrcoef(mine, others)[0, 1]
    return out


def trait_agreement(ratings: np.ndarray, values: tuple[float, ...], n_boot: int, seed: int = 0) -> dict:
    """ICC(2,k) and ordinal alpha with bootstrap 95% intervals for one trait's [clips, raters] answers."""
    return {
        "icc2k": icc2k(ratings), "icc2k_ci95": clip_interval(icc2k, ratings, n_boot, seed),
        "alpha_ordinal": ordinal_alpha(ratings, values),
        "alpha_ordinal_ci95": clip_interval(lambda r: ordinal_alpha(r, values), ratings, n_boot, seed),
    }
