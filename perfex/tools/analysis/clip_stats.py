"""Per-clip AU statistics (one row per clip, never per frame): mean, std and fraction of active frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.clips import ClipSet

STATISTICS = ("mean", "std", "active")
ACTIVE_INTENSITY = 1.0


def _per_clip_mean(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Mean of ``values [frames, k]`` within each clip (clips must be non-empty)."""
    return np.add.reduceat(values, offsets[:-1], axis=0) / np.diff(offsets)[:, None]


def clip_au_statistics(clips: ClipSet, intensity_columns: list[str], presence_columns: dict[str, str]) -> pd.DataFrame:
    """Rows = clips (index = clip ID), columns '<AU> mean|std|active' for each intensity column.

    ``presence_columns`` maps an intensity column (``AU12_r``) to its presence column (``AU12_c``) in
    ``clips.feature_names``; AUs without one count a frame as active when the intensity is >= 1.
    """
    if (clips.lengths == 0).any():
        raise ValueError("clip_au_statistics needs clips with at least one frame")
    names = list(clips.feature_names)
    frames = clips.features.astype(np.float64)
    intensity = frames[:, [names.index(c) for c in intensity_columns]]
    active = intensity >= ACTIVE_INTENSITY
    for k, column in enumerate(intensity_columns):
        if column in presence_columns:
            active[:, k] = frames[:, names.index(presence_columns[column])] > 0.5
    mean = _per_clip_mean(intensity, clips.offsets)
    spread = _per_clip_mean((intensity - np.repeat(mean, clips.lengths, axis=0)) ** 2, clips.offsets)
    fraction = _per_clip_mean(active.astype(np.float64), clips.offsets)
    columns = {}
    for k, column in enumerate(intensity_columns):
        au = column.removesuffix("_r")
        columns[f"{au} mean"], columns[f"{au} std"], columns[f"{au} active"] = mean[:, k], np.sqrt(spread[:, k]), fraction[:, k]
    return pd.DataFrame(columns, index=pd.Index(clips.ids, name="ID"))
