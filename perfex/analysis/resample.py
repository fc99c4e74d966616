"""Bootstrap resampling of whole groups (source videos), shared by the correlation and importance intervals."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def grouped_resamples(groups: np.ndarray, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """``n_boot`` arrays of row indices, each drawing as many groups as there are, with replacement."""
    _, group_of = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(group_of, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(group_of))])
    n_groups = len(offsets) - 1
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        chosen = rng.integers(0, n_groups, n_groups)
        yield np.concatenate([order[offsets[g] : offsets[g + 1]] for g in chosen])
