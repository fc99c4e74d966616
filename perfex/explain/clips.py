"""Explain whole clips of a ClipSet: batches of similar length, long clips covered by the model's windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..data.batches import collate
from ..core.windows import inference_windows
from ..core.clips import ClipSet
from ..core.schema import Targets
from .attributions import BATCH_SIZE, N_STEPS, explain_batch, has_attention


@dataclass
class ClipExplanations:
    """Per clip: attributions [T, targets, F], attention [T] (None without attention) and completeness deltas [targets]."""

    attributions: list[np.ndarray]
    attention: list[np.ndarray] | None
    deltas: np.ndarray


def explain_clips(model: nn.Module, clips: ClipSet, index: np.ndarray, target_levels: np.ndarray, *,
                  batch_size: int = BATCH_SIZE, device: torch.device | str = "cpu", n_steps: int = N_STEPS,
                  baseline: torch.Tensor | None = None, progress: bool = False,
                  targets: Targets | None = None) -> ClipExplanations:
    """Explain clips ``index`` for their ``target_levels [N, targets]`` (``targets``: as ``explain_batch`` reads them).

    A clip longer than the model window is explained window by window (the windows of ``predict_probs``);
    each frame gets the sum over its windows divided by the clip's number of windows, as the probabilities
    are averaged, so attention still sums to 1 and the deltas are the mean over windows.
    """
    device = torch.device(device)
    index = np.asarray(index, dtype=np.int64)
    lengths = clips.lengths[index]
    window = int(model.fixed_length or model.max_frames)
    positions, starts, sizes = inference_windows(lengths, window)
    n_windows = np.bincount(positions, minlength=len(index))
    attributions = [np.zeros((n, target_levels.shape[1], clips.n_features), np.float32) for n in lengths]
    attention = [np.zeros(n, np.float32) for n in lengths] if has_attention(model) else None
    deltas = np.zeros((len(index), target_levels.shape[1]))
    order = np.argsort(sizes, kind="stable")
    for begin in tqdm(range(0, len(order), batch_size), desc="explain", unit="batch", disable=not progress, leave=False):
        chosen = order[begin : begin + batch_size]
        batch = collate(clips, index[positions[chosen]], starts[chosen], sizes[chosen]).to(device)
        levels = torch.as_tensor(target_levels[positions[chosen]])
        attr, weights, delta = explain_batch(model, batch.x, batch.lengths, batch.times, levels, baseline, n_steps,
                                             targets=targets)
        for row, k in enumerate(chosen):
            clip, frames, share = positions[k], slice(starts[k], starts[k] + sizes[k]), 1.0 / n_windows[positions[k]]
            attributions[clip][frames] += attr[row, : sizes[k]].cpu().numpy() * share
            deltas[clip] += delta[row].cpu().numpy() * share
            if attention is not None:
                attention[clip][frames] += weights[row, : sizes[k]].cpu().numpy() * share
    return ClipExplanations(attributions, attention, deltas)
