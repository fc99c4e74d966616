"""The two original PerFeX architectures, reproducing the original forward computation for its checkpoints.

Written from the description in DESIGN.md section 2 (state-dict keys, shapes and behaviour, quirks included):
inputs zero-padded to 700 frames, raw AU values, no masking beyond zeroing the padded frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from perfex.errors import PerfexError

from .common import frame_mask, sinusoidal_embedding

PADDED_FRAMES = 700
N_AUS = 17
CNN_KERNELS = (3, 5, 7, 9)
# time of the last padded position as the original embedded it: frame index x 100 / 30
ORIGINAL_LAST_TIME = (PADDED_FRAMES - 1) * 100 / 30


@dataclass
class LegacyConfig:
    """Original models have no options; the config only records the fixed input size."""

    n_features: int = N_AUS
    max_frames: int = PADDED_FRAMES


class _Padded(nn.Module):
    """Original input handling: crop/pad to 700 frames and zero every frame past the clip's length."""

    fixed_length = PADDED_FRAMES
    max_frames = PADDED_FRAMES

    def __init__(self) -> None:
        super().__init__()
        self.config = LegacyConfig()

    def pad(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """[B, 700, F] with padded frames zeroed, returned channels-first as [B, F, 700]."""
        if x.shape[1] < PADDED_FRAMES:
            x = torch.nn.functional.pad(x, (0, 0, 0, PADDED_FRAMES - x.shape[1]))
        x = x[:, :PADDED_FRAMES]
        mask = frame_mask(lengths.to(x.device).clamp(max=PADDED_FRAMES), PADDED_FRAMES)
        return (x * mask[:, :, None].to(x.dtype)).transpose(1, 2)


class LegacyCNN(_Padded):
    """Four branches Conv(17->64) -> ReLU -> Conv(64->128) -> Dropout -> ReLU, mean over all 700 positions, two Linears."""

    name = "legacy_cnn"

    def __init__(self) -> None:
        super().__init__()
        for branch, k in enumerate(CNN_KERNELS, start=1):
            setattr(self, f"conv{branch}_1", nn.Conv1d(N_AUS, 64, k, padding=k // 2))
            setattr(self, f"conv{branch}_2", nn.Conv1d(64, 128, k, padding=k // 2))
        self.dropout = nn.Dropout(0.5)
        self.linear_layer_stack = nn.Sequential(nn.Linear(512, 128), nn.Linear(128, 25))

    def pooled_features(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The 512 features before the head: an unmasked mean over all 700 (zero-padded) positions."""
        x = self.pad(x, lengths)
        maps = []
        for branch in range(1, len(CNN_KERNELS) + 1):
            h = torch.relu(getattr(self, f"conv{branch}_1")(x))
            maps.append(torch.relu(self.dropout(getattr(self, f"conv{branch}_2")(h))))
        return torch.cat(maps, dim=1).mean(dim=2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear_layer_stack(self.pooled_features(x, lengths))


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

    def __init__(self) -> None:
        super().__init__()
        self.au_emb = nn.Linear(N_AUS, 512)
        self.time_embed = nn.Sequential(nn.Linear(512, 512), nn.SiLU(), nn.Linear(512, 512))
        self.attention_lstm = _AttentionLSTM()
        specs = ((N_AUS, 128, 8, 4), (128, 256, 5, 2), (256, 256, 3, 1), (256, 256, 3, 1))
        for index, (c_in, c_out, k, p) in enumerate(specs, start=1):
            setattr(self, f"conv1d_y{index}", nn.Conv1d(c_in, c_out, k, padding=p))
            setattr(self, f"squeeze_excite{index}", _OriginalSqueezeExcite(c_out))
        self.dropout = nn.Dropout(0.8)
        self.linear_layer_stack = nn.Sequential(nn.Linear(512, 256), nn.Linear(256, 128), nn.Linear(128, 25))

    def constant_branch(self, batch: int) -> torch.Tensor:
        """Branch A as the original computed it: one LSTM step from a zero state on frame 699 (always padding).

        Its input is ``au_emb(0) + time_embed(sin/cos(699 x 100/30))``; the "self-attention" softmax ran over a
        singleton axis, so the result is ``output_layer(h)`` repeated 256 times, whatever the clip holds.
        The sinusoid layout (``[sin, cos]``, frequencies ``10000^(-i/255)``) is an assumption: the original's
        exact variant could not be checked without its code; it changes only this constant.
        """
        device = self.au_emb.bias.device
        t = torch.tensor([ORIGINAL_LAST_TIME], device=device)
        step = self.au_emb.bias + self.time_embed(sinusoidal_embedding(t, 512))[0]
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

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        features = torch.cat([self.constant_branch(x.shape[0]), self.convolutional_branch(x, lengths)], dim=1)
        return self.linear_layer_stack(features)


LEGACY_MODELS = {"legacy_cnn": LegacyCNN, "legacy_attn": LegacyHybrid}
# Keys the original checkpoints carry but whose values never reach the output. Their shapes are not used;
# the ones listed in legacy_state_dict_shapes are plausible guesses for building test checkpoints.
UNUSED_PREFIXES = {"legacy_cnn": (), "legacy_attn": ("lstm.", "attention.", "bn1.", "bn2.", "attention_lstm.self_attn.")}


def _lstm_shapes(prefix: str, n_in: int, hidden: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}weight_ih_l0": (4 * hidden, n_in), f"{prefix}weight_hh_l0": (4 * hidden, hidden),
            f"{prefix}bias_ih_l0": (4 * hidden,), f"{prefix}bias_hh_l0": (4 * hidden,)}


def _batchnorm_shapes(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}{name}": (channels,) for name in ("weight", "bias", "running_mean", "running_var")}
    return {**shapes, f"{prefix}num_batches_tracked": ()}


def legacy_state_dict_shapes(kind: str) -> dict[str, tuple[int, ...]]:
    """Every key of an original checkpoint with its shape (used keys exact, unused keys plausible)."""
    if kind not in LEGACY_MODELS:
        raise PerfexError(f"unknown original architecture {kind!r}; use legacy_cnn or legacy_attn")
    shapes = {k: tuple(v.shape) for k, v in LEGACY_MODELS[kind]().state_dict().items()}
    if kind == "legacy_attn":
        shapes.update(_lstm_shapes("lstm.", 512, 256))
        shapes.update({"attention.in_proj_weight": (768, 256), "attention.in_proj_bias": (768,),
                       "attention.out_proj.weight": (256, 256), "attention.out_proj.bias": (256,)})
        shapes.update(_batchnorm_shapes("bn1.", 128))
        shapes.update(_batchnorm_shapes("bn2.", 256))
        shapes.update({"attention_lstm.self_attn.W1": (700, 256), "attention_lstm.self_attn.W2": (256, 700)})
    return shapes


def _used(kind: str, key: str) -> bool:
    return not key.startswith(UNUSED_PREFIXES[kind])


def _mismatches(kind: str, state_dict: dict[str, torch.Tensor]) -> list[str]:
    expected = {k: s for k, s in legacy_state_dict_shapes(kind).items() if _used(kind, k)}
    problems = [f"{k} missing" for k in expected if k not in state_dict]
    problems += [f"{k} has shape {tuple(state_dict[k].shape)}, expected {s}"
                 for k, s in expected.items() if k in state_dict and tuple(state_dict[k].shape) != s]
    return problems


def detect_legacy_architecture(state_dict: dict[str, torch.Tensor]) -> str:
    """'legacy_cnn' or 'legacy_attn' from the keys and shapes; a clear error naming what does not fit."""
    scores = {kind: _mismatches(kind, state_dict) for kind in LEGACY_MODELS}
    for kind, problems in scores.items():
        if not problems:
            return kind
    kind = min(scores, key=lambda k: len(scores[k]))
    hint = "conv1_1.weight" if kind == "legacy_cnn" else "conv1d_y1.weight"
    if hint not in state_dict and not any(k in state_dict for k in ("conv1_1.weight", "conv1d_y1.weight")):
        raise PerfexError("the state dict matches neither original PerFeX model (no conv1_1.weight or conv1d_y1.weight key); "
                          "pass a cnn_*.pt or attn_*.pt file saved with torch.save(model.state_dict())")
    shown = "; ".join(scores[kind][:4]) + (f" (and {len(scores[kind]) - 4} more)" if len(scores[kind]) > 4 else "")
    raise PerfexError(f"the state dict looks like the original {kind.removeprefix('legacy_')} model but does not fit it: {shown}")


def build_legacy_model(state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """The original architecture the state dict belongs to, with its weights loaded, in eval mode."""
    kind = detect_legacy_architecture(state_dict)
    model = LEGACY_MODELS[kind]()
    model.load_state_dict({k: state_dict[k] for k in model.state_dict()}, strict=True)
    return model.eval()
