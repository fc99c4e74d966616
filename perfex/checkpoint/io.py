"""Checkpoints: weights as safetensors plus their metadata JSON beside them; original .pt state dicts load safely too."""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from models import ModelConfigError, StateDictError, build_legacy_model, model_from_config

from ..core import __version__
from ..core.errors import PerfexError
from .metadata import (FORMAT, LEGACY_SUFFIXES, CheckpointMeta, check_family, config_path, read_config,
                       resolve_weights)
from ..core.tables import atomic_output

def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(model: nn.Module, weights_path: Path, meta: CheckpointMeta) -> Path:
    """Write ``<name>.safetensors`` and its metadata ``<name>.json`` (both atomically); returns the weights path."""
    weights_path = Path(weights_path)
    tensors = {k: v.detach().cpu().contiguous() for k, v in _unwrap(model).state_dict().items()}
    with atomic_output(weights_path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "model": meta.model})
    meta = replace(meta, perfex_version=__version__, created=time.strftime("%Y-%m-%dT%H:%M:%S"),
                   weights_sha256=file_sha256(weights_path))
    with atomic_output(config_path(weights_path)) as tmp:
        tmp.write_text(json.dumps(meta.to_json(), indent=1, default=_json_default) + "\n")
    return weights_path


def load_checkpoint(path: str | Path, family: str | None = None, map_location: str = "cpu") -> tuple[nn.Module, CheckpointMeta]:
    """Load a PerFeX checkpoint or an original PerFeX ``.pt`` state dict; returns (model in eval mode, metadata)."""
    path = resolve_weights(path)
    if path.suffix in LEGACY_SUFFIXES:
        model = _legacy_model(path, load_legacy_state_dict(path))
        meta = legacy_meta(model, path)
    else:
        meta = read_config(path)
        state = _read_safetensors(path)
        model = _legacy_model(path, state) if meta.legacy else _model_with_state(path, meta, state)
    check_family(meta, family, path)
    if meta.temperatures is not None:
        model.set_temperatures(meta.temperatures)
    if meta.deep_gates is not None:
        model.set_deep_gates(meta.deep_gates)
    return model.to(map_location).eval(), meta


def _legacy_model(path: Path, state: dict[str, torch.Tensor]) -> nn.Module:
    """The original architecture ``state`` fits, or an error naming the file."""
    try:
        return build_legacy_model(state)
    except StateDictError as err:
        raise PerfexError(f"{path}: {err}") from None


def _model_with_state(path: Path, meta: CheckpointMeta, state: dict[str, torch.Tensor]) -> nn.Module:
    try:
        model = model_from_config(meta.model, meta.model_config)
    except ModelConfigError as err:
        raise PerfexError(f"{config_path(path)} describes a model that cannot be built: {err}") from None
    misfit = _first_misfit(model.state_dict(), state)
    if misfit is not None:
        header = _header_model(path)
        named = f" (its own header says {header})" if header not in (None, meta.model) else ""
        raise PerfexError(f"{path} does not fit the {meta.model} model described by {config_path(path).name}{named}: "
                          f"{misfit}; keep each .safetensors beside the .json saved with it")
    model.load_state_dict(state)
    return model


def _first_misfit(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str | None:
    """The first tensor (in the model's order) missing from ``found`` or shaped differently, then the first one the
    model has no place for, in words; None when every tensor fits."""
    for name, tensor in expected.items():
        if name not in found:
            return f"tensor {name} {list(tensor.shape)} is missing"
        if found[name].shape != tensor.shape:
            return f"tensor {name} should be {list(tensor.shape)} but is {list(found[name].shape)}"
    extra = next((name for name in found if name not in expected), None)
    return None if extra is None else f"tensor {extra} {list(found[extra].shape)} has no place in the model"


def _header_model(path: Path) -> str | None:
    """The model name recorded in the safetensors header (None when absent)."""
    with safe_open(str(path), "pt") as handle:
        return (handle.metadata() or {}).get("model")


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise PerfexError(f"{path} could not be read as safetensors ({err}); the file is corrupted or truncated") from None


def load_legacy_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read an original ``torch.save(model.state_dict())`` file without running arbitrary pickled code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PerfexError(f"{path} is not a plain PyTorch state dict ({first[:200]}); only weights files can be loaded") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise PerfexError(f"{path} holds a {type(state).__name__}, not a state dict of tensors; save it with torch.save(model.state_dict())")
    return dict(state)


def legacy_meta(model: nn.Module, source: Path) -> CheckpointMeta:
    """The metadata an original checkpoint implies: raw 17 AUs, grid labels, no normalisation."""
    architecture = f"original PerFeX {model.name.removeprefix('legacy_')} (models/legacy.py)"
    return CheckpointMeta(model=model.name, legacy=True, label_binning="grid",
                          source={"file": source.name, "sha256": file_sha256(source), "architecture": architecture})


def check_features(meta: CheckpointMeta, feature_names: tuple[str, ...], weights: Path | str) -> None:
    """The data must carry exactly the feature columns the weights were trained on, in order."""
    expected = tuple(meta.feature_names)
    if tuple(feature_names) != expected:
        raise PerfexError(
            f"{weights} was trained on {len(expected)} features ({', '.join(expected[:4])}...) but the data gives "
            f"{len(feature_names)} ({', '.join(feature_names[:4])}...); pass --features matching the checkpoint"
        )


def save_optimizer(optimizer: torch.optim.Optimizer, path: Path, extra: dict) -> None:
    """Optimizer state as safetensors (tensors) plus JSON (hyper-parameters and ``extra``): resumable, no pickle."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, values in state["state"].items():
        for name, value in values.items():
            key = f"{param_id}.{name}"
            if torch.is_tensor(value):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp))
    with atomic_output(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars, **extra}, default=_json_default))


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> dict:
    """Restore what save_optimizer wrote; returns its ``extra`` fields."""
    info = json.loads(path.with_suffix(".json").read_text())
    state: dict[int, dict] = {}
    for key, tensor in _read_safetensors(path).items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = tensor
    for key, value in info.pop("scalars").items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": info.pop("param_groups")})
    return info


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def _json_default(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint config")
