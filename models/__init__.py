"""PerFeX models: ``create_model(name, **config)`` for ``cnn``, ``attn`` and the original architectures.

Every model is a ``TraitModel`` (the contract in docs/models.md); bad options raise ``ModelConfigError``.
"""

from __future__ import annotations

from .base import TraitModel
from .errors import ModelConfigError, ModelError, StateDictError
from .legacy import build_legacy_model, detect_legacy_architecture
from .registry import MODELS, config_to_dict, create_model, list_models, model_from_config

__all__ = ["MODELS", "ModelConfigError", "ModelError", "StateDictError", "TraitModel", "build_legacy_model",
           "config_to_dict", "create_model", "detect_legacy_architecture", "list_models", "model_from_config"]
