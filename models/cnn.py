"""Multi-scale 1D-CNN: parallel convolution branches (kernels 3, 5, 7, 9 with dilations 1, 2, 4, 8, so the branches see
5 to 129 frames: up to four seconds), pooling over time (masked mean, standard deviation and peak of every channel),
MLP head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .base import TraitModel
from .checks import (check_choice, check_fraction, check_kernel_features, check_outputs, check_positive,
                     check_target_levels, int_tuple)
from .common import POOLINGS, masked_mean, masked_mean_and_std, relu_conv_over_time
from .errors import ModelConfigError
from .outputs import OUTPUTS

CNN_POOLINGS = (*POOLINGS, "mean+std+max")  # the CNN may also keep each channel's peak over time


@dataclass
class CNNConfig:
    model: ClassVar[str] = "cnn"
    n_features: int = 17
    kernels: tuple[int, ...] = (3, 5, 7, 9)
    dilations: tuple[int, ...] | str | None = "doubling"  # one per kernel (tap spacing in frames); doubling: 1, 2, 4,
    # ... (one per kernel); None: all 1 (checkpoints made before the option)
    hidden_channels: int = 64
    branch_channels: int = 128
    head_hidden: int = 128
    dropout: float = 0.5
    pooling: str = "mean+std+max"  # over time, per channel: "mean+std+max", "mean+std" (statistics pooling) or "mean"
    n_traits: int = 5
    n_levels: int = 5
    max_frames: int = 700
    n_outputs: int | None = None  # None: n_traits * n_levels logits
    statistics_path: bool = True  # a linear path from the clip's masked AU mean/std to the logits, beside the deep path
    kernel_features: int = 0  # fixed random dilated kernels the statistics path may also read (training's --timing-score
    # asks for KERNEL_FEATURES of them; 0: none)
    kernel_taps: str = "mean"  # what a kernel's tap reads: "mean" of the frames of its spacing, or one frame ("point",
    # kernels made before the option)
    output: str = "softmax"  # how logits become level probabilities: softmax, corn (ordinal) or score (one per trait)
    target_levels: tuple[int, ...] | None = None  # per target: K levels, or 0 for a continuous score (None: n_traits
    # targets of n_levels each); when set it fixes n_traits and n_levels

    def __post_init__(self) -> None:
        self.kernels = int_tuple(self, "kernels")
        if self.dilations is not None and self.dilations != "doubling":
            spacing = tuple(self.dilations) if isinstance(self.dilations, (list, tuple)) else ()
            if len(spacing) != len(self.kernels) or not all(type(d) is int and d >= 1 for d in spacing):
                raise ModelConfigError(f"cnn option dilations {self.dilations!r} needs one positive integer per kernel "
                                       f"({len(self.kernels)} kernels), 'doubling' (1, 2, 4, ...) or null (all 1)")
            self.dilations = spacing
        even = [k for k in self.kernels if k % 2 == 0]
        if even:
            raise ModelConfigError(f"cnn option kernels holds even size(s) {even}, which would shift the output length; "
                                   "use odd kernel sizes such as 3, 5, 7, 9")
        check_positive(self, "n_features", "hidden_channels", "branch_channels", "head_hidden", "n_traits", "n_levels",
                       "max_frames")
        check_fraction(self, "dropout")
        check_kernel_features(self)
        check_outputs(self)
        check_target_levels(self)
        check_choice(self, "output", OUTPUTS)
        check_choice(self, "pooling", CNN_POOLINGS)


class MultiScaleCNN(TraitModel):
    """Each branch: Conv1d(F->64) -> ReLU -> Conv1d(64->128) -> ReLU; padding is zeroed between layers."""

    name = "cnn"

    def __init__(self, config: CNNConfig) -> None:
        super().__init__(config)
        c = config
        spacing = self.tap_spacing()
        self.first = nn.ModuleList(nn.Conv1d(c.n_features, c.hidden_channels, k, padding=d * (k // 2), dilation=d)
                                   for k, d in zip(c.kernels, spacing, strict=True))
        self.second = nn.ModuleList(nn.Conv1d(c.hidden_channels, c.branch_channels, k, padding=d * (k // 2), dilation=d)
                                    for k, d in zip(c.kernels, spacing, strict=True))
        self.dropout = nn.Dropout(c.dropout)
        width = c.branch_channels * len(c.kernels) * len(c.pooling.split("+"))
        self.head = nn.Sequential(
            nn.Linear(width, c.head_hidden), nn.ReLU(), nn.Dropout(c.dropout),
            nn.Linear(c.head_hidden, self.n_logits),
        )

    def tap_spacing(self) -> tuple[int, ...]:
        """Each branch's dilation: as configured, 1, 2, 4, ... for 'doubling', all 1 for None."""
        c = self.config
        if c.dilations == "doubling":
            return tuple(2**i for i in range(len(c.kernels)))
        return c.dilations or (1,) * len(c.kernels)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        x, mask = self.prepare(x, lengths)
        x = x.transpose(1, 2)
        keep = mask[:, None, :].to(x.dtype)
        pooled = []
        for first, second in zip(self.first, self.second, strict=True):
            h = relu_conv_over_time(first, x) * keep
            h = relu_conv_over_time(second, h)
            pooled.append(self.pool(h, mask))
        return torch.cat(pooled, dim=1)

    def pool(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``h [B, C, T]`` (non-negative, after ReLU) pooled over real frames as the config's ``pooling`` says."""
        if self.config.pooling == "mean":
            return masked_mean(h, mask)
        statistics = masked_mean_and_std(h, mask)
        if self.config.pooling == "mean+std":
            return statistics
        return torch.cat([statistics, (h * mask[:, None, :].to(h.dtype)).amax(dim=2)], dim=1)

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(pooled))

    def outputs_changed(self, n_outputs: int) -> None:
        self.config.n_outputs = n_outputs

    def flops_per_frame(self) -> int:
        """Multiply-adds x 2 of the convolutions for one real frame (the head runs once per clip)."""
        c = self.config
        return sum(2 * k * (c.n_features * c.hidden_channels + c.hidden_channels * c.branch_channels) for k in c.kernels)
