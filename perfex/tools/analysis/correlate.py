"""Pearson and Spearman correlations of every AU statistic with every trait, BH q-values, grouped bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ...core.errors import PerfexError
from ...core.metrics import bootstrap_interval

_MIN_CLIPS = 4


def _standardised(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean(axis=0)
    scale = np.sqrt((centred**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return centred / np.where(scale > 0, scale, np.nan)


def _correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of every column of ``x [n, a]`` with every column of ``y [n, b]`` -> [a, b] (NaN if constant)."""
    return _standardised(x).T @ _standardised(y)


def _p_values(r: np.ndarray, n: int) -> np.ndarray:
    """Two-sided p of a correlation under H0 (t with n-2 degrees of freedom)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = r * np.sqrt((n - 2) / np.clip(1 - r**2, 1e-300, None))
    return 2 * stats.t.sf(np.abs(t), n - 2)


def _both_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson and Spearman correlations [2, a, b] of every column of ``x`` with every column of ``y``."""
    return np.stack([_correlations(x, y), _correlations(stats.rankdata(x, axis=0), stats.rankdata(y, axis=0))])


def _q_values(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q over every finite p of one method's whole table (NaN stays NaN)."""
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = stats.false_discovery_control(p[finite], method="bh")
    return q


def correlation_table(statistics: pd.DataFrame, traits: pd.DataFrame, groups: np.ndarray,
                      n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per (AU statistic, trait): n, Pearson r/p/q/CI, Spearman rho/p/q/CI; rows = clips in both inputs."""
    n = len(statistics)
    if n < _MIN_CLIPS or len(traits) != n:
        raise PerfexError(f"{n} clip(s) to correlate; AU-trait correlations need at least {_MIN_CLIPS} clips with traits")
    if n_boot < 1:
        raise PerfexError(f"--bootstrap {n_boot}: use a positive number of bootstrap resamples, e.g. 1000")
    x, y = statistics.to_numpy(np.float64), traits.to_numpy(np.float64)
    r, rho = _both_correlations(x, y)
    p_r, p_rho = _p_values(r, n), _p_values(rho, n)
    q_both = (_q_values(p_r), _q_values(p_rho))
    low, high = bootstrap_interval(lambda rows: _both_correlations(x[rows], y[rows]), groups, n_boot, seed)
    a, b = np.meshgrid(np.arange(x.shape[1]), np.arange(y.shape[1]), indexing="ij")
    table = pd.DataFrame({"statistic": statistics.columns[a.ravel()], "trait": traits.columns[b.ravel()], "n_clips": n})
    for k, name in enumerate(("pearson_r", "spearman_rho")):
        table[name] = (r, rho)[k].ravel()
        table[f"{name.split('_')[0]}_p"] = (p_r, p_rho)[k].ravel()
        table[f"{name.split('_')[0]}_q"] = q_both[k].ravel()
        table[f"{name}_low"], table[f"{name}_high"] = low[k].ravel(), high[k].ravel()
    return table
