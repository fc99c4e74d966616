"""The contract every registered model keeps (written out in docs/models.md)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from .common import frame_mask
from .errors import ModelConfigError
from .outputs import decode_levels, decode_targets
from .wide import StatisticsPath


class TraitModel(nn.Module):
    """Clips ``x [B, T, F]`` with ``lengths [B]`` (and optional ``times [B, T]`` in seconds, or ``[1, T]`` shared by
    every clip) to logits ``[B, n_outputs]``.

    ``forward = forward_head(forward_features(...))``, plus the statistics path's logits when the config asks for it
    (``statistics_path``: a linear map of the clip's masked per-feature mean/std, beside the deep path). Each trait's
    deep logits are scaled by its gate (``set_deep_gates``: 1 = on, 0 = that trait reads the statistics path alone).
    ``head`` is an ``nn.Sequential`` ending in the output Linear. ``level_probabilities`` turns logits into [B, traits, levels]
    probabilities, with the per-trait temperatures set by calibration and the config's ``output`` decode. A config with
    ``target_levels`` lays its logits out target by target (``widths``) and decodes each target on its own: its levels'
    probabilities, or a continuous target's value in column 0 (``models.outputs.decode_targets``).
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
        self.register_buffer("temperature", torch.ones(config.n_traits), persistent=False)
        self.register_buffer("deep_gate", torch.ones(config.n_traits), persistent=False)
        self.gated = False  # True when some trait's gate is not 1 (the deep logits are then scaled)
        self.statistics = (StatisticsPath(config.n_features, self.n_logits, getattr(config, "kernel_features", 0),
                                          getattr(config, "kernel_taps", "mean")) if config.statistics_path else None)

    @property
    def target_levels(self) -> tuple[int, ...] | None:
        """Per target its level count (0: continuous), or None for ``n_traits`` uniform targets."""
        return getattr(self.config, "target_levels", None)

    @property
    def widths(self) -> tuple[int, ...]:
        """Logits per target: K for K levels, 1 for a continuous target or a ``score`` output."""
        if self.target_levels is not None:
            return tuple(max(levels, 1) for levels in self.target_levels)
        return (1 if self.config.output == "score" else self.config.n_levels,) * self.config.n_traits

    @property
    def n_logits(self) -> int:
        """Logits the model outputs: ``n_outputs`` when set, else the sum of the targets' widths."""
        return getattr(self.config, "n_outputs", None) or sum(self.widths)

    def set_temperatures(self, temperatures: Any) -> None:
        """Per-trait temperatures that divide each trait's logits before decoding (1 = uncalibrated)."""
        self.temperature.copy_(torch.as_tensor(temperatures, dtype=torch.float32).reshape(self.config.n_traits))

    def set_deep_gates(self, gates: Any) -> None:
        """Per-trait weight of the deep path's logits: 1 keeps them, 0 leaves that trait to the statistics path."""
        self.deep_gate.copy_(torch.as_tensor(gates, dtype=torch.float32).reshape(self.config.n_traits))
        self.gated = bool((self.deep_gate != 1).any())

    def gate_deep(self, logits: torch.Tensor) -> torch.Tensor:
        """The deep path's ``[B, n_logits]`` logits with each trait's gate applied (unchanged when every gate is 1)."""
        if not self.gated:
            return logits
        if self.target_levels is None:
            return logits * self.deep_gate.repeat_interleave(self.n_logits // self.config.n_traits).to(logits.dtype)
        gates = torch.cat([self.deep_gate[i : i + 1].expand(width) for i, width in enumerate(self.widths)])
        return logits * gates.to(logits.dtype)

    def level_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``[B, traits * levels]`` logits -> ``[B, traits, levels]`` probabilities (temperatures applied); with
        ``target_levels``, each target decoded on its own (a continuous target's value in column 0, never scaled)."""
        if self.target_levels is not None:
            temperature = torch.cat([self.temperature[i : i + 1].expand(levels) if levels else torch.ones_like(self.temperature[:1])
                                     for i, levels in enumerate(self.target_levels)])
            return decode_targets(logits.float() / temperature, self.target_levels, self.config.output)
        per_trait = logits.float().view(-1, self.config.n_traits, self.n_logits // self.config.n_traits)
        return decode_levels(per_trait / self.temperature[None, :, None], self.config.output, self.config.n_levels)

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
        return self.gate_deep(self.forward_head(self.forward_features(x, lengths, times))) + self.statistics_logits(x, lengths)

    def statistics_logits(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor | float:
        """The statistics path's logits ``[B, n_logits]`` (0 for a model without it)."""
        return 0.0 if self.statistics is None else self.statistics(*self.prepare(x, lengths))

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
        """The parameters of ``head`` and of the statistics path (what ``--freeze-encoder`` trains)."""
        return list(self.head.parameters()) + (list(self.statistics.parameters()) if self.statistics is not None else [])

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
        if self.statistics is not None:
            self.statistics.linear = nn.Linear(self.statistics.linear.in_features, n_outputs).to(last.weight.device)

    def drop_kernel_features(self) -> None:
        """Remove the statistics path's kernel features (when no target uses them), recording it in ``config``."""
        if self.statistics is not None and self.statistics.kernels is not None:
            self.statistics.drop_kernels()
            self.config.kernel_features = 0

    def outputs_changed(self, n_outputs: int) -> None:
        """Record a new output count in ``config`` (or refuse it) before ``reset_head`` swaps the layer."""
        raise NotImplementedError
