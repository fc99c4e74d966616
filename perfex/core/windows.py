"""Windows over clips, the zero-padded frame arrays of a batch, and per-clip probabilities from per-window ones:
NumPy only, shared by the torch and ONNX Runtime inference paths."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .clips import ClipSet

# Torch pads batches to a multiple of this many frames: fewer distinct shapes keep oneDNN's kernel cache and the
# allocator small over long deploy runs, for a few percent of extra (masked) frames. ONNX Runtime needs no such
# steps and pads only to the longest window of a batch.
SHAPE_STEP = 32


def pad_frames(clips: ClipSet, index: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
               pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``[starts[i], starts[i]+lengths[i])`` of clips ``index[i]``, zero-padded: ``x [B, T, F]`` and times from
    each window's first frame ``[B, T]`` (float32)."""
    width = int(pad_to if pad_to is not None else max(int(lengths.max(initial=1)), 1))
    x = np.zeros((len(index), width, clips.n_features), dtype=np.float32)
    times = np.zeros((len(index), width), dtype=np.float32)
    for row, (clip, start, length) in enumerate(zip(index, starts, lengths)):
        begin = clips.offsets[clip] + start
        x[row, :length] = clips.features[begin : begin + length]
        times[row, :length] = clips.times[begin : begin + length] - clips.times[begin]
    return x, times


def shared_times(times: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``times [B, T]`` as one row ``[1, T]`` when every window's frame times are those of the longest one (what a
    constant frame rate gives): models then embed the times once per batch. Otherwise ``times`` unchanged."""
    if len(times) < 2:
        return times
    longest = times[int(np.argmax(lengths))]
    real = np.arange(times.shape[1])[None, :] < lengths[:, None]
    return longest[None, :] if bool(np.all((times == longest) | ~real)) else times


def inference_windows(lengths: np.ndarray, max_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cover every clip with windows of at most ``max_frames`` (half-overlapping, last one flush with the end).

    Returns (clip position, window start, window length) for every window, clip by clip.
    """
    positions, starts, sizes = [], [], []
    stride = max(max_frames // 2, 1)
    for position, length in enumerate(lengths.tolist()):
        if length <= max_frames:
            window_starts = [0]
        else:
            window_starts = list(range(0, length - max_frames + 1, stride))
            if window_starts[-1] != length - max_frames:
                window_starts.append(length - max_frames)
        positions += [position] * len(window_starts)
        starts += window_starts
        sizes += [min(length, max_frames)] * len(window_starts)
    return np.array(positions, dtype=np.int64), np.array(starts, dtype=np.int64), np.array(sizes, dtype=np.int64)


def window_batches(clips: ClipSet, index: np.ndarray, max_frames: int, batch_size: int,
                   fixed_length: int | None = None, shape_step: int = SHAPE_STEP) -> tuple[np.ndarray, Iterator[tuple]]:
    """Every window of the clips at ``index``, in length-sorted batches padded to a multiple of ``shape_step`` frames:
    the position in ``index`` of each window's clip [W], and batches of (window numbers [b], x [b, T, F],
    times [b, T] or [1, T] (``shared_times``), lengths [b])."""
    positions, starts, sizes = inference_windows(clips.lengths[index], int(fixed_length or max_frames))
    keep = sizes > 0
    positions, starts, sizes = positions[keep], starts[keep], sizes[keep]
    order = np.argsort(sizes, kind="stable")

    def batches() -> Iterator[tuple]:
        for begin in range(0, len(order), batch_size):
            chosen = order[begin : begin + batch_size]
            width = fixed_length or -(-int(sizes[chosen].max()) // shape_step) * shape_step
            x, times = pad_frames(clips, index[positions[chosen]], starts[chosen], sizes[chosen], width)
            yield chosen, x, shared_times(times, sizes[chosen]), sizes[chosen]

    return positions, batches()


def average_windows(window_probs: np.ndarray, positions: np.ndarray, n_clips: int) -> tuple[np.ndarray, np.ndarray]:
    """Outputs per window [W, targets, L] (level probabilities, or a continuous target's value) averaged over each
    clip's windows: [n_clips, targets, L] (NaN for a clip without windows) and the window count per clip."""
    sums = np.zeros((n_clips, *window_probs.shape[1:]), dtype=np.float64)
    np.add.at(sums, positions, window_probs)
    counts = np.bincount(positions, minlength=n_clips)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = sums / counts[:, None, None]
    return probs.astype(np.float32), counts
