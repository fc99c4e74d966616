"""The statistics ("wide") path: masked per-feature mean and standard deviation of a clip, mapped linearly to the logits.

A model that adds this path's output to its deep logits sees, from the first step, what a logistic regression
on per-clip AU means/stds sees; the deep path only has to add what the time course reveals.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def clip_statistics(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean and standard deviation over time of ``x [B, T, F]`` -> ``[B, 2F]`` (real frames only)."""
    weights = mask.to(x.dtype)[:, :, None]
    count = weights.sum(dim=1).clamp(min=1.0)
    mean = (x * weights).sum(dim=1) / count
    variance = (((x - mean[:, None, :]) * weights) ** 2).sum(dim=1) / count
    return torch.cat([mean, variance.clamp(min=1e-8).sqrt()], dim=1)


class StatisticsPath(nn.Module):
    """Standardised clip statistics -> one linear layer -> ``n_outputs`` logits; zero-initialised (adds nothing at first)."""

    def __init__(self, n_features: int, n_outputs: int = 25) -> None:
        super().__init__()
        self.register_buffer("stat_mean", torch.zeros(2 * n_features))
        self.register_buffer("stat_std", torch.ones(2 * n_features))
        self.linear = nn.Linear(2 * n_features, n_outputs)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def set_statistics_normalization(self, statistics: np.ndarray) -> None:
        """Standardise with the mean/std over training clips of ``clip_statistics`` ([N, 2F] array)."""
        statistics = np.asarray(statistics, dtype=np.float64)
        std = statistics.std(axis=0)
        self.stat_mean.copy_(torch.as_tensor(statistics.mean(axis=0), dtype=torch.float32))
        self.stat_std.copy_(torch.as_tensor(np.where(std > 1e-6, std, 1.0), dtype=torch.float32))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x [B, T, F]`` (normalised, padding zeroed) and ``mask [B, T]`` -> logits ``[B, n_outputs]``."""
        statistics = clip_statistics(x.float(), mask)
        return self.linear((statistics - self.stat_mean) / self.stat_std)
