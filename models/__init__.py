"""PerFeX models: ``create_model(name, **config)`` for ``cnn``, ``attn`` and the original architectures.

Every model is a ``TraitModel`` (the contract in docs/models.md); bad options raise ``ModelConfigError``. Importing
this package and its registry does not import torch: the model classes load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ModelConfigError, ModelError, StateDictError
from .registry import (MODELS, ModelEntry, config_to_dict, create_model, families, family_of, list_models,
                       model_from_config, register)

_LAZY = {"TraitModel": "base", "build_legacy_model": "legacy", "detect_legacy_architecture": "legacy"}

__all__ = ["MODELS", "ModelConfigError", "ModelEntry", "ModelError", "StateDictError", "TraitModel", "build_legacy_model",
           "config_to_dict", "create_model", "detect_legacy_architecture", "families", "family_of", "list_models",
           "model_from_config", "register"]


def __getattr__(name: str) -> Any:
    """The torch-backed names (``TraitModel``, the legacy builders), imported when first asked for."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
