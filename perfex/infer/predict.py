"""Batched, windowed inference shared by validation, test and deploy."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..core.clips import ClipSet
from ..core.windows import average_windows, window_batches


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
    positions, batches = window_batches(clips, index, model.max_frames, batch_size, model.fixed_length)
    logits = np.zeros((len(positions), model.n_logits), dtype=np.float32)
    was_training = model.training
    model.eval()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    for chosen, x, times, lengths in tqdm(batches, desc="predict", unit="batch", disable=not progress, leave=False):
        with autocast:
            logits[chosen] = model(torch.from_numpy(x).to(device), torch.from_numpy(lengths).to(device),
                                   torch.from_numpy(times).to(device)).float().cpu().numpy()
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
    """Outputs [N, targets, L] (level probabilities, or a continuous target's value; ``perfex.core.schema``) for the
    clips at ``index`` (all by default) and the number of windows per clip."""
    logits, positions = window_logits(model, clips, index, batch_size, device, bf16, progress)
    return clip_probabilities(model, logits, positions, len(clips) if index is None else len(index))


def clip_probabilities(model: nn.Module, logits: np.ndarray, positions: np.ndarray, n_clips: int) -> tuple[np.ndarray, np.ndarray]:
    """Each window's logits decoded by the model (its temperatures and output applied), averaged over each clip's
    windows: outputs [n_clips, targets, L] (NaN for a clip without windows) and the window count per clip."""
    with torch.no_grad():
        window_probs = model.level_probabilities(torch.from_numpy(logits).to(model.temperature.device)).cpu().numpy()
    return average_windows(window_probs, positions, n_clips)
