"""Folds of the training clips by whole source videos, which choose the statistics start's regularisation, decide
whether it reads the timing score, and cross-fit that score."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

FOLDS = 3  # folds of the training clips' source videos

HeldOutLoss = Callable[[Any, np.ndarray, np.ndarray], np.ndarray]  # (candidate, inside, outside rows) -> loss per outside row


def group_folds(groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``FOLDS`` (inside, outside) splits of the training clips by whole source videos; [] with one video."""
    from sklearn.model_selection import GroupKFold

    n_folds = min(FOLDS, len(np.unique(groups)))
    return list(GroupKFold(n_splits=n_folds).split(groups, groups=groups)) if n_folds >= 2 else []


def held_out_losses(candidates: tuple, held_out_loss: HeldOutLoss, groups: np.ndarray) -> np.ndarray | None:
    """[candidates, rows]: each training row's loss under each candidate, from the fold that held its source video
    out; None when there are too few videos to fold."""
    splits = group_folds(groups)
    if not splits:
        return None
    losses = np.zeros((len(candidates), len(groups)))
    for row, candidate in enumerate(candidates):
        for inside, outside in splits:
            losses[row, outside] = held_out_loss(candidate, inside, outside)
    return losses


def choose_by_folds(candidates: tuple, held_out_loss: HeldOutLoss, groups: np.ndarray) -> Any:
    """The candidate with the lowest loss summed over ``FOLDS`` folds of whole source videos (``groups``) of the
    training clips; the middle one when there are too few videos to fold."""
    losses = held_out_losses(candidates, held_out_loss, groups)
    return candidates[len(candidates) // 2] if losses is None else candidates[int(np.argmin(losses.sum(axis=1)))]


def clearly_lower(losses: np.ndarray, reference: np.ndarray, groups: np.ndarray) -> bool:
    """Whether per-row ``losses`` total lower than ``reference`` by more than one standard error of the paired
    difference, with rows of one source video (``groups``) counted as one draw."""
    _, video = np.unique(groups, return_inverse=True)
    gains = np.bincount(video, weights=reference - losses)
    if len(gains) < 2:
        return False
    return bool(gains.sum() > np.sqrt(len(gains)) * gains.std(ddof=1))
