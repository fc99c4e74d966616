"""Model registry: ``create_model(name, **config)`` for ``cnn``, ``attn`` and the original architectures."""

from __future__ import annotations

from dataclasses import asdict, fields

from torch import nn

from perfex.errors import PerfexError

from .cnn import CNNConfig, MultiScaleCNN
from .hybrid import HybridAttention, HybridConfig
from .legacy import LegacyCNN, LegacyConfig, LegacyHybrid, build_legacy_model, detect_legacy_architecture

MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "cnn": (MultiScaleCNN, CNNConfig),
    "attn": (HybridAttention, HybridConfig),
    "legacy_cnn": (LegacyCNN, LegacyConfig),
    "legacy_attn": (LegacyHybrid, LegacyConfig),
}

__all__ = ["MODELS", "build_legacy_model", "config_to_dict", "create_model", "detect_legacy_architecture", "model_from_config"]


def create_model(name: str, **config: object) -> nn.Module:
    """A fresh model by registry name; ``config`` overrides fields of its config dataclass."""
    if name not in MODELS:
        raise PerfexError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    model_class, config_class = MODELS[name]
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise PerfexError(f"model {name!r} has no option {unknown[0]!r}; its options are {', '.join(sorted(known))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    if config_class is LegacyConfig:
        if values and values != asdict(LegacyConfig()):
            raise PerfexError(f"the original {name} architecture is fixed: 17 AUs padded to 700 frames")
        return model_class()
    return model_class(config_class(**values))


def config_to_dict(model: nn.Module) -> dict:
    """The model's config as JSON-ready values (stored in every checkpoint)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()}


def model_from_config(name: str, config: dict | None) -> nn.Module:
    """Rebuild a model from the name and config stored in a checkpoint."""
    return create_model(name, **(config or {}))
