"""Batched, windowed inference shared by validation, test and deploy."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .batches import collate, inference_windows
from .clips import ClipSet
from .schema import N_LEVELS, TRAITS

# Batches are padded to a multiple of this many frames: fewer distinct shapes keep the CPU kernels' caches and
# the allocator small over long deploy runs, for a few percent of extra (masked) frames.
SHAPE_STEP = 32


def expected_scores(probs: np.ndarray) -> np.ndarray:
    """Expected trait score on the 0..1 scale from level probabilities [N, 5, 5]: ``sum_l l * p_l / 4`` -> [N, 5]."""
    return np.asarray(probs, dtype=np.float64) @ np.arange(N_LEVELS, dtype=np.float64) / (N_LEVELS - 1)


@torch.no_grad()
def window_logits(
    model: nn.Module,
    clips: ClipSet,
    index: np.ndarray | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every window [W, n_logits] and the position in ``index`` of each window's clip [W].

    A clip longer than the model's window is covered by half-overlapping windows (a zero-length clip by none).
    Windows are sorted by length so batches carry little padding; the result is in window order.
    """
    device = torch.device(device)
    index = np.arange(len(clips)) if index is None else np.asarray(index, dtype=np.int64)
    fixed_length = model.fixed_length
    positions, starts, sizes = inference_windows(clips.lengths[index], int(fixed_length or model.max_frames))
    keep = sizes > 0
    positions, starts, sizes = positions[keep], starts[keep], sizes[keep]
    order = np.argsort(sizes, kind="stable")
    logits = np.zeros((len(order), model.n_logits), dtype=np.float32)
    was_training = model.training
    model.eval()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    for begin in tqdm(range(0, len(order), batch_size), desc="predict", unit="batch", disable=not progress, leave=False):
        chosen = order[begin : begin + batch_size]
        width = fixed_length or -(-int(sizes[chosen].max()) // SHAPE_STEP) * SHAPE_STEP
        batch = collate(clips, index[positions[chosen]], starts[chosen], sizes[chosen], pad_to=width).to(device)
        with autocast:
            logits[chosen] = model(batch.x, batch.lengths, batch.times).float().cpu().numpy()
    model.train(was_training)
    return logits, positions


def predict_probs(
    model: nn.Module,
    clips: ClipSet,
    index: np.ndarray | None = None,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    bf16: bool = False,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities [N, 5, 5] for the clips at ``index`` (all by default) and the number of windows per clip."""
    logits, positions = window_logits(model, clips, index, batch_size, device, bf16, progress)
    return clip_probabilities(model, logits, positions, len(clips) if index is None else len(index))


def clip_probabilities(model: nn.Module, logits: np.ndarray, positions: np.ndarray, n_clips: int) -> tuple[np.ndarray, np.ndarray]:
    """Each window's logits decoded by the model (its temperatures and output applied), averaged over each clip's
    windows: probabilities [n_clips, 5, 5] (NaN for a clip without windows) and the window count per clip."""
    with torch.no_grad():
        window_probs = model.level_probabilities(torch.from_numpy(logits).to(model.temperature.device)).cpu().numpy()
    sums = np.zeros((n_clips, len(TRAITS), N_LEVELS), dtype=np.float64)
    np.add.at(sums, positions, window_probs)
    counts = np.bincount(positions, minlength=n_clips)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = sums / counts[:, None, None]
    return probs.astype(np.float32), counts
