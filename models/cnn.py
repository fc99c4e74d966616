"""Multi-scale 1D-CNN: four parallel convolution branches (kernels 3, 5, 7, 9), masked average pooling, MLP head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import MaskedInputModel, masked_mean


@dataclass
class CNNConfig:
    n_features: int = 17
    kernels: tuple[int, ...] = (3, 5, 7, 9)
    hidden_channels: int = 64
    branch_channels: int = 128
    head_hidden: int = 128
    dropout: float = 0.5
    n_traits: int = 5
    n_levels: int = 5
    max_frames: int = 700


class MultiScaleCNN(MaskedInputModel):
    """Each branch: Conv1d(F->64) -> ReLU -> Conv1d(64->128) -> ReLU; padding is zeroed between layers."""

    name = "cnn"

    def __init__(self, config: CNNConfig) -> None:
        super().__init__(config.n_features, config.max_frames)
        self.config = config
        c = config
        self.first = nn.ModuleList(nn.Conv1d(c.n_features, c.hidden_channels, k, padding=k // 2) for k in c.kernels)
        self.second = nn.ModuleList(nn.Conv1d(c.hidden_channels, c.branch_channels, k, padding=k // 2) for k in c.kernels)
        self.dropout = nn.Dropout(c.dropout)
        width = c.branch_channels * len(c.kernels)
        self.head = nn.Sequential(
            nn.Linear(width, c.head_hidden), nn.ReLU(), nn.Dropout(c.dropout), nn.Linear(c.head_hidden, c.n_traits * c.n_levels)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        x, mask = self.prepare(x, lengths)
        x = x.transpose(1, 2).contiguous()
        keep = mask[:, None, :].to(x.dtype)
        pooled = []
        for first, second in zip(self.first, self.second):
            h = torch.relu(first(x)) * keep
            h = torch.relu(second(h))
            pooled.append(masked_mean(h, mask))
        return self.head(self.dropout(torch.cat(pooled, dim=1)))

    def flops_per_frame(self) -> int:
        """Multiply-adds x 2 of the convolutions for one real frame (the head runs once per clip)."""
        c = self.config
        return sum(2 * k * (c.n_features * c.hidden_channels + c.hidden_channels * c.branch_channels) for k in c.kernels)
