"""The statistics start's timing score: fixed random kernels (``models.wide.KernelFeatures``) read from the training
clips, and per target a ridge regression of its label on them, cross-fitted over folds of source videos so that the
start's own cross-validation judges it on labels it never saw (docs/training.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..core.clips import ClipSet
from ..core.schema import BIG_FIVE, Targets
from ..core.windows import window_batches
from .folds import group_folds

KERNEL_RIDGE_ALPHAS = (30.0, 300.0, 3000.0, 30000.0)  # the timing score's ridge over ~1,000 kernel features
KERNEL_BIAS_CLIPS = 64  # training clips whose kernel responses set each kernel's bias


@dataclass
class TimingScore:
    """A target's timing score, a ridge regression of its label on the standardised kernel features.

    ``crossed`` is each training clip's score from the folds that did not see its source video; ``per_fold`` maps a
    fold (by the first row it holds out) to the scores its cross-validation step may use: the rows it trains on
    cross-fitted among themselves, and the held-out rows from a ridge on those rows, so that no label of the held-out
    fold reaches its training scores. ``weight``/``bias`` map kernel features to the score of the ridge on all rows.
    Every score is standardised (by the cross-fitted scores' mean and standard deviation)."""

    crossed: np.ndarray
    per_fold: dict[int, np.ndarray]
    weight: np.ndarray
    bias: float

    def for_fold(self, outside: np.ndarray) -> np.ndarray:
        return self.per_fold[int(outside[0])]


class RidgeFits:
    """Ridge regressions (with intercept, as sklearn's ``Ridge``) of any label on any subset of the rows of ``x``, for
    any alpha: one SVD per subset of rows, shared by every target and alpha."""

    def __init__(self, x: np.ndarray) -> None:
        self.x, self.svds = x, {}

    def fit(self, rows: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
        """Weights [K] and intercept of the ridge regression of ``y[rows]`` on ``x[rows]``."""
        key = rows.tobytes()
        if key not in self.svds:
            center = self.x[rows].mean(axis=0)
            self.svds[key] = (center, *np.linalg.svd(self.x[rows] - center, full_matrices=False))
        center, u, singular, vt = self.svds[key]
        target = y[rows] - y[rows].mean()
        weight = vt.T @ (singular / (singular**2 + alpha) * (u.T @ target))
        return weight, float(y[rows].mean() - center @ weight)

    def predict(self, rows: np.ndarray, y: np.ndarray, alpha: float, at: np.ndarray) -> np.ndarray:
        weight, intercept = self.fit(rows, y, alpha)
        return self.x[at] @ weight + intercept


def _cross_fit(ridge: RidgeFits, y: np.ndarray, known: np.ndarray, alpha: float, splits: list) -> np.ndarray:
    """Ridge predictions for every row from the split whose model (fitted on its labelled rows) did not train on it."""
    crossed = np.zeros(len(y))
    for inside, outside in splits:
        crossed[outside] = ridge.predict(inside[known[inside]], y, alpha, outside)
    return crossed


def timing_score(ridge: RidgeFits, y: np.ndarray, known: np.ndarray, groups: np.ndarray) -> TimingScore | None:
    """A target's ``TimingScore`` from the ridge regressions of its label ``y`` (used where ``known``: a level or a
    standardised value) on the kernel features; alpha by the Pearson r of the cross-fitted scores (the score is
    standardised, so only its order matters); None with fewer than three folds of source videos."""
    splits = group_folds(groups)
    if len(splits) < 3:
        return None
    candidates = [_cross_fit(ridge, y, known, alpha, splits) for alpha in KERNEL_RIDGE_ALPHAS]
    fits = [np.corrcoef(c[known], y[known])[0, 1] if c[known].std() > 1e-9 else -1.0 for c in candidates]
    alpha, crossed = KERNEL_RIDGE_ALPHAS[int(np.argmax(fits))], candidates[int(np.argmax(fits))]
    center, scale = crossed.mean(), max(crossed.std(), 1e-9)
    per_fold = {}
    for inside, outside in splits:
        inner = [(np.intersect1d(inside, other_inside), np.intersect1d(inside, other_outside))
                 for other_inside, other_outside in splits if not np.array_equal(other_outside, outside)]
        scores = _cross_fit(ridge, y, known, alpha, inner)
        scores[outside] = ridge.predict(inside[known[inside]], y, alpha, outside)
        per_fold[int(outside[0])] = (scores - center) / scale
    weight, intercept = ridge.fit(np.flatnonzero(known), y, alpha)
    return TimingScore((crossed - center) / scale, per_fold, weight / scale, (intercept - center) / scale)


def fit_kernel_biases(model: nn.Module, clips: ClipSet, train: np.ndarray, seed: int) -> None:
    """Set each kernel's bias from the responses over up to ``KERNEL_BIAS_CLIPS`` training clips' first windows."""
    chosen = np.random.default_rng(seed).permutation(train)[:KERNEL_BIAS_CLIPS]
    _, batches = window_batches(clips, chosen, model.max_frames, len(chosen), model.fixed_length)
    _, x, _, lengths = next(batches)
    model.statistics.kernels.fit_biases(*model.prepare(torch.from_numpy(x), torch.from_numpy(lengths)))


def kernel_features(model: nn.Module, clips: ClipSet, index: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """What the statistics path's kernels read from the clips at ``index``, averaged over each one's windows:
    [len(index), kernels]."""
    positions, batches = window_batches(clips, index, model.max_frames, batch_size, model.fixed_length)
    windows = np.zeros((len(positions), model.statistics.kernels.n_kernels))
    for chosen, x, _, lengths in batches:
        windows[chosen] = model.statistics.kernels(*model.prepare(torch.from_numpy(x), torch.from_numpy(lengths))).numpy()
    sums = np.zeros((len(index), windows.shape[1]))
    np.add.at(sums, positions, windows)
    return sums / np.maximum(np.bincount(positions, minlength=len(index)), 1)[:, None]


def timing_score_readers(model: nn.Module, targets: Targets = BIG_FIVE) -> list[str]:
    """The targets whose statistics-path logits give the kernel features a non-zero weight."""
    if model.statistics is None or model.statistics.kernels is None:
        return []
    weight = model.statistics.linear.weight[:, -model.statistics.kernels.n_kernels:].detach().cpu().numpy()
    rows = np.split(weight, np.cumsum(model.widths)[:-1])
    return [target.name for target, block in zip(targets, rows, strict=True) if block.any()]
