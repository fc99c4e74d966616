"""Model registry: one ``ModelEntry`` per model; everything else that names models derives from it.

An entry names its model and config classes as ``"module:Class"`` strings, imported on first use, so the command
line, checkpoint metadata and ONNX deploy path can read the registry without importing torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from .errors import ModelConfigError

if TYPE_CHECKING:
    from .base import TraitModel


def _load(path: str) -> type:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its classes, how scripts and help texts name it, and how old checkpoints load."""

    name: str
    model: str  # "module:Class" of its TraitModel subclass
    config: str  # "module:Class" of its config dataclass
    title: str  # in help texts: "Train the <title> on ..."
    script_prefix: str | None = None  # its scripts are <prefix>_train.py, ..._deploy.py; None: run by its family's
    family: str = ""  # whose scripts run its checkpoints ("": its own name)
    # options added after checkpoints were written, with the value every earlier checkpoint was trained with
    options_added_later: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "family", self.family or self.name)
        object.__setattr__(self, "options_added_later", MappingProxyType(dict(self.options_added_later)))

    @property
    def model_class(self) -> type[TraitModel]:
        return _load(self.model)

    @property
    def config_class(self) -> type:
        return _load(self.config)


MODELS: dict[str, ModelEntry] = {}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model to the registry (its name must be new)."""
    if entry.name in MODELS:
        raise ModelConfigError(f"model {entry.name!r} is registered twice; give the new one another name")
    MODELS[entry.name] = entry
    return entry


register(ModelEntry("cnn", "models.cnn:MultiScaleCNN", "models.cnn:CNNConfig", title="multi-scale 1D-CNN",
                    script_prefix="1dcnn",
                    options_added_later={"statistics_path": False, "pooling": "mean", "dilations": None,
                                         "kernel_features": 0, "kernel_taps": "point"}))
register(ModelEntry("attn", "models.hybrid:HybridAttention", "models.hybrid:HybridConfig",
                    title="hybrid attention network (LSTM + attention | FCN + squeeze-excite)", script_prefix="attn",
                    options_added_later={"statistics_path": False, "attention_pooling": "mean",
                                         "kernel_features": 0, "kernel_taps": "point"}))
register(ModelEntry("legacy_cnn", "models.legacy_nets:LegacyCNN", "models.legacy_nets:LegacyConfig",
                    title="original PerFeX 1D-CNN", family="cnn"))
register(ModelEntry("legacy_attn", "models.legacy_nets:LegacyHybrid", "models.legacy_nets:LegacyConfig",
                    title="original PerFeX hybrid attention network", family="attn"))


def list_models() -> list[str]:
    """Registered model names, in registry order."""
    return list(MODELS)


def families() -> tuple[str, ...]:
    """The models that have their own scripts (train, retrain, test, deploy), in registry order."""
    return tuple(name for name, entry in MODELS.items() if entry.script_prefix)


def family_of(name: str) -> str:
    """The family whose scripts run checkpoints of model ``name`` ('cnn' for cnn and legacy_cnn); unknown: itself."""
    entry = MODELS.get(name)
    return entry.family if entry else name


def script_prefix(name: str) -> str:
    """The prefix of the scripts that run model ``name`` (``1dcnn`` for cnn and legacy_cnn); unknown: the name."""
    entry = MODELS.get(family_of(name))
    return entry.script_prefix if entry and entry.script_prefix else name


def options_added_later(name: str) -> Mapping[str, Any]:
    """The options model ``name`` gained after checkpoints were written, with their earlier value (unknown: none)."""
    entry = MODELS.get(name)
    return entry.options_added_later if entry else {}


def create_model(name: str, **config: object) -> TraitModel:
    """A fresh model by registry name; ``config`` overrides fields of its config dataclass (validated there)."""
    if name not in MODELS:
        raise ModelConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    entry = MODELS[name]
    config_class = entry.config_class
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ModelConfigError(f"model {name!r} has no option {unknown[0]!r}; its options are {', '.join(sorted(known))}")
    return entry.model_class(config_class(**config))


def config_to_dict(model: TraitModel) -> dict:
    """The model's config as JSON-ready values (stored in every checkpoint)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(model.config).items()}


def model_from_config(name: str, config: dict | None) -> TraitModel:
    """Rebuild a model from the name and config stored in a checkpoint."""
    return create_model(name, **(config or {}))
