"""Original PerFeX state dicts: every key with its shape, recognising which architecture one belongs to, loading it."""

from __future__ import annotations

import torch

from .base import TraitModel
from .errors import StateDictError
from .legacy_nets import CNN_KERNELS, N_AUS, PADDED_FRAMES, LegacyCNN, LegacyConfig, LegacyHybrid, original_time_embedding

__all__ = ["CNN_KERNELS", "LEGACY_MODELS", "N_AUS", "PADDED_FRAMES", "LegacyCNN", "LegacyConfig", "LegacyHybrid",
           "build_legacy_model", "detect_legacy_architecture", "legacy_state_dict_shapes", "original_time_embedding"]

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
        raise StateDictError(f"unknown original architecture {kind!r}; use legacy_cnn or legacy_attn")
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
        raise StateDictError("the state dict matches neither original PerFeX model (no conv1_1.weight or conv1d_y1.weight key); "
                             "pass a cnn_*.pt or attn_*.pt file saved with torch.save(model.state_dict())")
    shown = "; ".join(scores[kind][:4]) + (f" (and {len(scores[kind]) - 4} more)" if len(scores[kind]) > 4 else "")
    family = kind.removeprefix("legacy_")
    raise StateDictError(f"the state dict looks like the original {family} model but does not fit it: {shown}")


def build_legacy_model(state_dict: dict[str, torch.Tensor]) -> TraitModel:
    """The original architecture the state dict belongs to, with its weights loaded, in eval mode."""
    kind = detect_legacy_architecture(state_dict)
    model = LEGACY_MODELS[kind]()
    model.load_state_dict({k: state_dict[k] for k in model.state_dict()}, strict=True)
    return model.eval()
