"""The two original PerFeX architectures, reproducing the original forward computation for its checkpoints.

Inputs zero-padded to 700 frames, raw AU values, no masking beyond zeroing the padded frames; state-dict keys
are the original ones (summarised in docs/models.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .base import TraitModel
from .common import frame_mask
from .errors import ModelConfigError

PADDED_FRAMES = 700
N_AUS = 17
N_LOGITS = 25
CNN_KERNELS = (3, 5, 7, 9)
# time of the last padded position as the original embedded it: frame index x 100 / 30
ORIGINAL_LAST_TIME = (PADDED_FRAMES - 1) * 100 / 30
EMBEDDING_HALF = 256


def original_time_embedding(t: torch.Tensor) -> torch.Tensor:
    """The original sinusoid ``[..., 512]``: concat(cos(t f_i), sin(t f_i)), f_i = exp(-ln(10000) i / 256), i < 256.

    In float32 like the original (angles at t = 2330 carry float32 rounding of about 1e-4, as the original's did).
    """
    i = torch.arange(EMBEDDING_HALF, device=t.device, dtype=torch.float32)
    angles = t.float()[..., None] * torch.exp(-math.log(10000.0) * i / EMBEDDING_HALF)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


@dataclass
class LegacyConfig:
    """Original models have no options; the config only records the fixed input size."""

    model: ClassVar[str] = "legacy"
    statistics_path: ClassVar[bool] = False
    output: ClassVar[str] = "softmax"
    n_traits: ClassVar[int] = 5
    n_levels: ClassVar[int] = 5
    n_features: int = N_AUS
    max_frames: int = PADDED_FRAMES

    def __post_init__(self) -> None:
        if (self.n_features, self.max_frames) != (N_AUS, PADDED_FRAMES):
            raise ModelConfigError(f"the original architectures are fixed at {N_AUS} AUs padded to {PADDED_FRAMES} frames "
                                   f"(asked for n_features={self.n_features!r}, max_frames={self.max_frames!r}); "
                                   "drop these options or train a cnn or attn model")


class _Padded(TraitModel):
    """Original input handling: crop/pad to 700 frames and zero every frame past the clip's length."""

    fixed_length = PADDED_FRAMES
    normalizes = False

    def __init__(self, config: LegacyConfig | None = None) -> None:
        super().__init__(config or LegacyConfig())

    @property
    def head(self) -> nn.Sequential:
        """The original ``linear_layer_stack`` (kept under its original state-dict name)."""
        return self.linear_layer_stack

    def pad(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, 700, F] with padded frames zeroed, returned channels-first as [B, F, 700]."""
        if x.shape[1] < PADDED_FRAMES:
            x = torch.nn.functional.pad(x, (0, 0, 0, PADDED_FRAMES - x.shape[1]))
        x = x[:, :PADDED_FRAMES]
        mask = frame_mask(lengths.to(x.device).clamp(max=PADDED_FRAMES), PADDED_FRAMES)
        return (x * mask[:, :, None].to(x.dtype)).transpose(1, 2)

    def outputs_changed(self, n_outputs: int) -> None:
        if n_outputs != N_LOGITS:
            raise ModelConfigError(f"the original {self.name} architecture has a fixed {N_LOGITS}-logit head; "
                                   f"reset it to {N_LOGITS} outputs or train a cnn or attn model for {n_outputs}")


class LegacyCNN(_Padded):
    """Four branches Conv(17->64) -> ReLU -> Conv(64->128) -> Dropout -> ReLU, mean over all 700 positions, two Linears."""

    name = "legacy_cnn"

    def __init__(self, config: LegacyConfig | None = None) -> None:
        super().__init__(config)
        for branch, k in enumerate(CNN_KERNELS, start=1):
            setattr(self, f"conv{branch}_1", nn.Conv1d(N_AUS, 64, k, padding=k // 2))
            setattr(self, f"conv{branch}_2", nn.Conv1d(64, 128, k, padding=k // 2))
        self.dropout = nn.Dropout(0.5)
        self.linear_layer_stack = nn.Sequential(nn.Linear(512, 128), nn.Linear(128, N_LOGITS))

    def pooled_features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The 512 features before the head: an unmasked mean over all 700 (zero-padded) positions."""
        x = self.pad(x, lengths)
        maps = []
        for branch in range(1, len(CNN_KERNELS) + 1):
            h = torch.relu(getattr(self, f"conv{branch}_1")(x))
            maps.append(torch.relu(self.dropout(getattr(self, f"conv{branch}_2")(h))))
        return torch.cat(maps, dim=1).mean(dim=2)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        return self.pooled_features(x, lengths)


class _OriginalSqueezeExcite(nn.Module):
    """SE over all positions (padding included), as the original: avg -> fc1 -> ReLU -> fc2 -> sigmoid -> scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // 16)
        self.fc2 = nn.Linear(channels // 16, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=2)))))[:, :, None]


class _AttentionLSTM(nn.Module):
    """Holds the original ``attention_lstm`` weights; only ``lstm`` and ``output_layer`` affect the output."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(512, 256)
        self.output_layer = nn.Linear(256, 1)


class LegacyHybrid(_Padded):
    """Original hybrid: a constant branch A (see ``constant_branch``) beside the MLSTM-FCN style branch B."""

    name = "legacy_attn"

    def __init__(self, config: LegacyConfig | None = None) -> None:
        super().__init__(config)
        self.au_emb = nn.Linear(N_AUS, 512)
        self.time_embed = nn.Sequential(nn.Linear(512, 512), nn.SiLU(), nn.Linear(512, 512))
        self.attention_lstm = _AttentionLSTM()
        specs = ((N_AUS, 128, 8, 4), (128, 256, 5, 2), (256, 256, 3, 1), (256, 256, 3, 1))
        for index, (c_in, c_out, k, p) in enumerate(specs, start=1):
            setattr(self, f"conv1d_y{index}", nn.Conv1d(c_in, c_out, k, padding=p))
            setattr(self, f"squeeze_excite{index}", _OriginalSqueezeExcite(c_out))
        self.dropout = nn.Dropout(0.8)
        self.linear_layer_stack = nn.Sequential(nn.Linear(512, 256), nn.Linear(256, 128), nn.Linear(128, N_LOGITS))

    def constant_branch(self, batch: int) -> torch.Tensor:
        """Branch A as the original computed it: one LSTM step from a zero state on frame 699 (always padding).

        Its input is ``au_emb(0) + time_embed(original_time_embedding(699 x 100/30))``; the "self-attention"
        softmax ran over a singleton axis, so the result is ``output_layer(h)`` repeated 256 times.
        """
        device = self.au_emb.bias.device
        t = torch.tensor([ORIGINAL_LAST_TIME], device=device)
        step = self.au_emb.bias + self.time_embed(original_time_embedding(t).to(self.au_emb.bias.dtype))[0]
        lstm = self.attention_lstm.lstm
        gates = lstm.weight_ih_l0 @ step + lstm.bias_ih_l0 + lstm.bias_hh_l0
        i, _, g, o = gates.chunk(4)
        h = torch.sigmoid(o) * torch.tanh(torch.sigmoid(i) * torch.tanh(g))
        return self.attention_lstm.output_layer(h).expand(batch, 256)

    def convolutional_branch(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = self.pad(x, lengths)
        for index in range(1, 5):
            h = getattr(self, f"squeeze_excite{index}")(torch.relu(getattr(self, f"conv1d_y{index}")(h)))
            if index in (1, 3):
                h = self.dropout(h)
        return h.mean(dim=2)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([self.constant_branch(x.shape[0]), self.convolutional_branch(x, lengths)], dim=1)
