"""Hybrid attention network: (AU + time embedding -> LSTM -> attentive statistics pooling) beside an FCN with
squeeze-excite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .base import TraitModel
from .checks import (check_choice, check_fraction, check_kernel_features, check_outputs, check_positive,
                     check_target_levels, int_tuple)
from .common import POOLINGS, SqueezeExcite, relu_conv_over_time, sinusoidal_embedding, zero_padded_mean
from .errors import ModelConfigError
from .outputs import OUTPUTS


@dataclass
class HybridConfig:
    model: ClassVar[str] = "attn"
    n_features: int = 17
    d_model: int = 128
    lstm_hidden: int = 128
    attention_hidden: int = 64
    conv_channels: tuple[int, ...] = (128, 256, 256, 256)
    conv_kernels: tuple[int, ...] = (8, 5, 3, 3)
    se_reduction: int = 16
    head_hidden: int = 128
    dropout: float = 0.3
    attention_pooling: str = "mean+std"  # of the LSTM states, attention-weighted: "mean+std" (attentive statistics) or "mean"
    n_traits: int = 5
    n_levels: int = 5
    max_frames: int = 700
    fps: float = 30.0
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
        self.conv_channels, self.conv_kernels = int_tuple(self, "conv_channels"), int_tuple(self, "conv_kernels")
        if len(self.conv_channels) != len(self.conv_kernels):
            raise ModelConfigError(f"attn options conv_channels ({len(self.conv_channels)} entries) and conv_kernels "
                                   f"({len(self.conv_kernels)} entries) must have the same length: "
                                   "one kernel size per convolution")
        check_positive(self, "n_features", "d_model", "lstm_hidden", "attention_hidden", "se_reduction", "head_hidden",
                       "n_traits", "n_levels", "max_frames")
        if self.d_model % 2 or self.d_model < 4:
            raise ModelConfigError(f"attn option d_model must be even and at least 4 (half sines, half cosines), "
                                   f"not {self.d_model}; use e.g. 128")
        check_fraction(self, "dropout")
        if isinstance(self.fps, bool) or not isinstance(self.fps, (int, float)) or not self.fps > 0:
            raise ModelConfigError(f"attn option fps must be a positive number of frames per second, not {self.fps!r}; "
                                   "use e.g. 30")
        check_kernel_features(self)
        check_outputs(self)
        check_target_levels(self)
        check_choice(self, "output", OUTPUTS)
        check_choice(self, "attention_pooling", POOLINGS)


class HybridAttention(TraitModel):
    """Branch A sees every real frame through a batch-first LSTM; attention weights on padding are exactly zero."""

    name = "attn"

    def __init__(self, config: HybridConfig) -> None:
        super().__init__(config)
        c = config
        self.au_embedding = nn.Linear(c.n_features, c.d_model)
        self.time_embedding = nn.Sequential(nn.Linear(c.d_model, c.d_model), nn.SiLU(), nn.Linear(c.d_model, c.d_model))
        self.lstm = nn.LSTM(c.d_model, c.lstm_hidden, batch_first=True)
        self.attention_proj = nn.Linear(c.lstm_hidden, c.attention_hidden)
        self.attention_score = nn.Linear(c.attention_hidden, 1, bias=False)
        widths = (c.n_features, *c.conv_channels)
        self.convs = nn.ModuleList(nn.Conv1d(i, o, k) for i, o, k in zip(widths[:-1], widths[1:], c.conv_kernels, strict=True))
        self.excites = nn.ModuleList(SqueezeExcite(o, c.se_reduction) for o in c.conv_channels)
        self.dropout = nn.Dropout(c.dropout)
        self.head = nn.Sequential(
            nn.Linear(self.attended_width() + c.conv_channels[-1], c.head_hidden), nn.ReLU(), nn.Dropout(c.dropout),
            nn.Linear(c.head_hidden, self.n_logits),
        )

    def attended_width(self) -> int:
        """Width of branch A's pooled output: the attention-weighted mean of the LSTM states, and their weighted std."""
        return self.config.lstm_hidden * (2 if self.config.attention_pooling == "mean+std" else 1)

    def attend(self, x: torch.Tensor, mask: torch.Tensor, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Branch A: pooled LSTM states [B, attended_width()] and attention weights [B, T] (zero on padding). ``times``
        is [B, T], or [1, T] when every clip has the same frame times (the time embedding is then computed once per
        batch)."""
        h = self.au_embedding(x) + self.time_embedding(sinusoidal_embedding(times, self.config.d_model))
        # A left-to-right LSTM's output at a real frame never depends on the padding after it, and the attention
        # below gives padding zero weight, so the plain (fused, ~10x faster to train on CPU than packed) LSTM is exact
        # and whatever times the padded frames carry change nothing.
        out, _ = self.lstm(h)
        scores = self.attention_score(torch.tanh(self.attention_proj(out))).squeeze(-1)
        weights = scores.float().masked_fill(~mask, float("-inf")).softmax(dim=1)
        w = weights.to(out.dtype)
        mean = torch.einsum("bt,bth->bh", w, out)
        if self.config.attention_pooling == "mean":
            return mean, weights
        variance = torch.einsum("bt,bth->bh", w, (out - mean[:, None, :]) ** 2)
        return torch.cat([mean, variance.clamp(min=1e-6).sqrt()], dim=1), weights

    def convolve(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Branch B: "same"-length convolutions with squeeze-excite, padding zeroed after each, masked pooling."""
        h = x.transpose(1, 2)
        keep = mask[:, None, :].to(h.dtype)
        for index, (conv, excite) in enumerate(zip(self.convs, self.excites, strict=True)):
            k = conv.kernel_size[0]
            h = relu_conv_over_time(conv, h, ((k - 1) // 2, k // 2)) * keep
            h = excite(h, mask)
            if index in (0, 2):
                h = self.dropout(h)
        return zero_padded_mean(h, mask)

    def features_and_attention(self, x: torch.Tensor, lengths: torch.Tensor,
                               times: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled features [B, attended_width() + conv_channels[-1]] and attention weights [B, T] (zero on padding)."""
        x, mask = self.prepare(x, lengths)
        if times is None:
            times = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)[None, :] / self.config.fps
        pooled, weights = self.attend(x, mask, times)
        return torch.cat([pooled, self.convolve(x, mask)], dim=1), weights

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        return self.features_and_attention(x, lengths, times)[0]

    def attention_weights(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights [B, T] over frames: sum to 1 over each clip's real frames, exactly 0 on padding."""
        return self.features_and_attention(x, lengths, times)[1]

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(pooled))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None,
                return_attention: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits [B, n_outputs]; with ``return_attention=True`` also the attention weights [B, T]."""
        pooled, weights = self.features_and_attention(x, lengths, times)
        logits = self.gate_deep(self.forward_head(pooled)) + self.statistics_logits(x, lengths)
        return (logits, weights) if return_attention else logits

    def outputs_changed(self, n_outputs: int) -> None:
        self.config.n_outputs = n_outputs

    def flops_per_frame(self) -> int:
        """Multiply-adds x 2 per real frame: embeddings, LSTM, attention scores and the convolutions."""
        c = self.config
        embed = c.n_features * c.d_model + 2 * c.d_model * c.d_model
        lstm = 4 * c.lstm_hidden * (c.d_model + c.lstm_hidden)
        attention = c.lstm_hidden * c.attention_hidden + c.attention_hidden
        widths = (c.n_features, *c.conv_channels)
        convs = sum(i * o * k for i, o, k in zip(widths[:-1], widths[1:], c.conv_kernels, strict=True))
        return 2 * (embed + lstm + attention + convs)
