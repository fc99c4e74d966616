"""The NaN policy: refuse, drop and count, or interpolate non-finite feature values within each clip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ....core.errors import PerfexError

NAN_HINT = "pass --nan drop-frames or --nan interpolate, or fix the file"


def apply_nan_policy(features: np.ndarray, times: np.ndarray, offsets: np.ndarray, dropped: np.ndarray, policy: str,
                     names: tuple[str, ...], path: Path, clip_ids: np.ndarray, row_label: Callable[[int], str]) -> tuple:
    """(features, times, offsets, dropped) after the policy: 'error' raises on the first NaN/inf naming its row,
    'drop-frames' drops and counts those frames, 'interpolate' fills them linearly in time within the clip."""
    finite = np.isfinite(features)
    bad_rows = ~finite.all(axis=1)
    if not bad_rows.any():
        return features, times, offsets, dropped
    if policy == "error":
        row = int(np.flatnonzero(bad_rows)[0])
        col = int(np.flatnonzero(~finite[row])[0])
        value = features[row, col]
        kind = "NaN or empty" if np.isnan(value) else f"{value}"
        raise PerfexError(f"{path}: {row_label(row)}, column {names[col]!r} is {kind}; {NAN_HINT}")
    lengths = np.diff(offsets)
    clip_of_row = np.repeat(np.arange(len(lengths)), lengths)
    if policy == "drop-frames":
        keep = ~bad_rows
        kept = np.bincount(clip_of_row[keep], minlength=len(lengths))
        new_offsets = np.zeros_like(offsets)
        np.cumsum(kept, out=new_offsets[1:])
        return features[keep], times[keep], new_offsets, dropped + lengths - kept
    for clip in np.unique(clip_of_row[bad_rows]):
        span = slice(offsets[clip], offsets[clip + 1])
        block, ok, when = features[span], finite[span], times[span]
        for col in np.flatnonzero(~ok.all(axis=0)):
            good = ok[:, col]
            if not good.any():
                raise PerfexError(f"{path}: clip {clip_ids[clip]} has no finite {names[col]} value to interpolate from; "
                                  "pass --nan drop-frames or fix the file")
            block[~good, col] = np.interp(when[~good], when[good], block[good, col])
    return features, times, offsets, dropped
