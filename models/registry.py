"""Model registry: names to (model class, config dataclass); build, rebuild and describe models."""

from __future__ import annotations

from dataclasses import asdict, fields

from .base import TraitModel
from .cnn import CNNConfig, MultiScaleCNN
from .errors import ModelConfigError
from .hybrid import HybridAttention, HybridConfig
from .legacy_nets import LegacyCNN, LegacyConfig, LegacyHybrid

MODELS: dict[str, tuple[type[TraitModel], type]] = {
    "cnn": (MultiScaleCNN, CNNConfig),
    "attn": (HybridAttention, HybridConfig),
    "legacy_cnn": (LegacyCNN, LegacyConfig),
    "legacy_attn": (LegacyHybrid, LegacyConfig),
}


def list_models() -> list[str]:
    """Registered model names, in registry order."""
    return list(MODELS)


def create_model(name: str, **config: object) -> TraitModel:
    """A fresh model by registry name; ``config`` overrides fields of its config dataclass (validated there)."""
    if name not in MODELS:
        raise ModelConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    model_class, config_class = MODELS[name]
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ModelConfigError(f"model {name!r} has no option {unknown[0]!r}; its options are {', '.join(sorted(known))}")
    return model_class(config_class(**config))


def config_to_dict(model: TraitModel) -> dict:
    """The model's config as JSON-ready values (stored in every checkpoint)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()}


def model_from_config(name: str, config: dict | None) -> TraitModel:
    """Rebuild a model from the name and config stored in a checkpoint."""
    return create_model(name, **(config or {}))
