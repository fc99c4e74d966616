"""The contract every registered model keeps (written out in docs/models.md)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .common import frame_mask
from .errors import ModelConfigError


class TraitModel(nn.Module):
    """Clips ``x [B, T, F]`` with ``lengths [B]`` (and optional ``times [B, T]`` in seconds) to logits ``[B, n_outputs]``.

    ``forward = forward_head(forward_features(...))``; ``head`` is an ``nn.Sequential`` ending in the output Linear.
    """

    name: ClassVar[str] = ""
    fixed_length: ClassVar[int | None] = None  # inputs are padded to exactly this many frames; None: any length
    normalizes: ClassVar[bool] = True  # False: raw inputs, normalisation buffers are not saved and cannot be set
    config: Any
    max_frames: int

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.max_frames = config.max_frames
        self.register_buffer("feature_mean", torch.zeros(config.n_features), persistent=self.normalizes)
        self.register_buffer("feature_std", torch.ones(config.n_features), persistent=self.normalizes)

    def set_normalization(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Store training-split statistics; inputs become (x - mean) / std."""
        if not self.normalizes:
            raise ModelConfigError(f"the {self.name} model takes raw inputs and has no normalisation to set")
        self.feature_mean.copy_(torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(np.asarray(std), dtype=torch.float32))

    def prepare(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised input with padded frames set to zero, and the [B, T] frame mask."""
        mask = frame_mask(lengths.to(x.device), x.shape[1])
        x = (x - self.feature_mean) / self.feature_std
        return x * mask[:, :, None].to(x.dtype), mask

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths, times))

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled clip representation ``[B, D]`` that the head reads."""
        raise NotImplementedError

    def forward_head(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, n_outputs]`` from the pooled representation."""
        return self.head(pooled)

    @property
    def n_outputs(self) -> int:
        return self.head[-1].out_features

    def head_parameters(self) -> list[nn.Parameter]:
        """The parameters of ``head`` (what ``--freeze-encoder`` trains)."""
        return list(self.head.parameters())

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Every parameter not in ``head``."""
        in_head = {id(p) for p in self.head_parameters()}
        return [p for p in self.parameters() if id(p) not in in_head]

    def freeze_encoder(self) -> list[nn.Parameter]:
        """Stop gradients to the encoder; returns the head parameters, the ones left to train."""
        for p in self.encoder_parameters():
            p.requires_grad_(False)
        head = self.head_parameters()
        for p in head:
            p.requires_grad_(True)
        return head

    def reset_head(self, n_outputs: int) -> None:
        """Replace the output Linear with a freshly initialised one giving ``n_outputs`` logits."""
        if not isinstance(n_outputs, int) or isinstance(n_outputs, bool) or n_outputs <= 0:
            raise ModelConfigError(f"reset_head needs a positive number of outputs, not {n_outputs!r}")
        self.outputs_changed(n_outputs)
        last = self.head[-1]
        self.head[-1] = nn.Linear(last.in_features, n_outputs).to(device=last.weight.device, dtype=last.weight.dtype)

    def outputs_changed(self, n_outputs: int) -> None:
        """Record a new output count in ``config`` (or refuse it) before ``reset_head`` swaps the layer."""
        raise NotImplementedError
