"""Folds of the training clips by whole source videos, which choose the statistics start's regularisation and
cross-fit its timing score."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

FOLDS = 3  # folds of the training clips' source videos


def group_folds(groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Up to ``FOLDS`` (inside, outside) splits of the training clips by whole source videos; [] with one video."""
    from sklearn.model_selection import GroupKFold

    n_folds = min(FOLDS, len(np.unique(groups)))
    return list(GroupKFold(n_splits=n_folds).split(groups, groups=groups)) if n_folds >= 2 else []


def choose_by_folds(candidates: tuple, held_out_loss: Callable[[Any, np.ndarray, np.ndarray], float],
                    groups: np.ndarray) -> Any:
    """The candidate with the lowest loss summed over ``FOLDS`` folds of whole source videos (``groups``) of the
    training clips; the middle one when there are too few videos to fold."""
    splits = group_folds(groups)
    if not splits:
        return candidates[len(candidates) // 2]
    losses = [sum(held_out_loss(c, inside, outside) for inside, outside in splits) for c in candidates]
    return candidates[int(np.argmin(losses))]
