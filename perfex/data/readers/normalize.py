"""Per-person normalisation: each clip's per-feature median subtracted before the global standardisation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...core.clips import ClipSet


def clip_medians(clips: ClipSet) -> np.ndarray:
    """[n_clips, F] per-feature median of each clip (zeros for a clip without frames)."""
    medians = np.zeros((len(clips), clips.n_features), dtype=np.float32)
    for k in np.flatnonzero(clips.lengths):
        medians[k] = np.median(clips.clip(k), axis=0)
    return medians


def center_on_clip_median(clips: ClipSet) -> ClipSet:
    """A copy of ``clips`` whose every clip has per-feature median 0 (times, labels and ids unchanged)."""
    clip_of_row = np.repeat(np.arange(len(clips)), clips.lengths)
    return replace(clips, features=clips.features - clip_medians(clips)[clip_of_row])
