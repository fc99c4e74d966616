"""The checkpoint JSON written beside every ``.safetensors`` file: one typed record, versioned, migrated on read.

Schema 2 (this module) groups the lineage and renames ``train_config`` to ``run_config``; schema-1 files (round one,
and the first shipped weights) carry no ``schema_version`` and are migrated when read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from models.registry import MODELS, family_of, options_added_later

from ..core.errors import PerfexError
from ..core.schema import AU_INTENSITY_COLUMNS, LEVEL_GRID, TRAITS, Targets

FORMAT = "perfex-checkpoint"
SCHEMA_VERSION = 2


@dataclass
class DataRecord:
    """The data a run was trained on: files and labels table (portable paths), fingerprint, training-clip count."""

    files: list[str] = field(default_factory=list)
    labels: str | None = None
    fingerprint: str | None = None
    n_train_clips: int | None = None


@dataclass
class Lineage:
    """Where the weights came from: the parent checkpoint (None when trained from scratch), the iteration, the study."""

    parent: dict[str, str] | None = None
    iteration: int = 1
    study: dict[str, Any] | None = None


@dataclass
class CheckpointMeta:
    """Everything needed to rebuild, check and explain a model; serialised as the checkpoint's JSON."""

    model: str
    model_config: dict[str, Any] | None = None
    legacy: bool = False
    feature_names: list[str] = field(default_factory=lambda: list(AU_INTENSITY_COLUMNS))
    normalization: dict[str, list[float]] | None = None
    normalize: str = "global"  # 'clip-median': each clip's per-feature median is subtracted before `normalization`
    provenance: dict[str, Any] | None = None  # extractor, scale and missing AUs of the training data (None: OpenFace 2)
    traits: list[str] = field(default_factory=lambda: list(TRAITS))
    label_grid: list[float] = field(default_factory=lambda: list(LEVEL_GRID))
    label_binning: str | None = None
    split: dict[str, Any] | None = None
    split_sha256: str | None = None
    data: DataRecord | None = None
    epoch: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    temperatures: list[float] | None = None  # one per trait, fitted on the validation split; None: uncalibrated
    deep_gates: list[float] | None = None  # one per trait: 1 deep path on, 0 statistics path alone; None: all on
    targets: list[dict[str, Any]] | None = None  # --targets as trained (name, levels, center/scale); None: the Big Five
    lineage: Lineage = field(default_factory=Lineage)
    run_config: dict[str, Any] | None = None
    source: dict[str, str] | None = None  # original .pt checkpoints: file name, sha256, architecture
    schema_version: int = SCHEMA_VERSION
    perfex_version: str | None = None
    created: str | None = None
    weights_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON-ready dict (``format`` first)."""
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str = "checkpoint config") -> CheckpointMeta:
        """Read a schema-2 dict, or migrate a schema-1 one; unknown fields are refused, not dropped silently."""
        if not isinstance(raw, dict) or raw.get("format") != FORMAT or "model" not in raw:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise PerfexError(f"{where} is not a PerFeX checkpoint config (format {found!r})")
        values = {k: v for k, v in raw.items() if k != "format"}
        version = values.get("schema_version", 1)
        if version == 1:
            values = _migrate_v1(values)
        elif version != SCHEMA_VERSION:
            raise PerfexError(f"{where} has schema version {version}; this PerFeX reads up to {SCHEMA_VERSION}: update PerFeX")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PerfexError(f"{where} has unknown field(s) {', '.join(unknown[:5])}; it was written by another PerFeX version")
        values["model_config"] = with_options_added_later(values["model"], values.get("model_config"))
        values["data"] = DataRecord(**values["data"]) if values.get("data") else None
        values["lineage"] = Lineage(**values.get("lineage") or {})
        return cls(**values)

    @property
    def target_set(self) -> Targets:
        """What the model predicts: the recorded targets, or the Big Five at five levels (every earlier checkpoint)."""
        return Targets.from_list(self.targets)

    @property
    def family(self) -> str:
        """'cnn' for cnn and legacy_cnn, 'attn' for attn and legacy_attn (``ModelEntry.family``)."""
        return family_of(self.model)


def _migrate_v1(values: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: lineage grouped, ``train_config`` -> ``run_config``, legacy source fields grouped (round-one
    models' missing statistics path is one of ``OPTIONS_ADDED_LATER``)."""
    values = dict(values)
    values["lineage"] = {"parent": values.pop("parent", None), "iteration": values.pop("iteration", 1), "study": None}
    values["run_config"] = values.pop("train_config", None)
    source = {k: values.pop(k) for k in ("source_file", "source_sha256", "architecture") if k in values}
    values["source"] = source or None
    values["schema_version"] = SCHEMA_VERSION
    return values


# Model options added after checkpoints were already being written, with the value every earlier checkpoint was
# trained with (declared by each model's registry entry): a stored config that lacks one keeps that behaviour.
OPTIONS_ADDED_LATER: dict[str, dict[str, Any]] = {name: dict(entry.options_added_later) for name, entry in MODELS.items()
                                                   if entry.options_added_later}


def with_options_added_later(model: str, model_config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``model_config`` completed with the model's options added later where it predates them (None stays None)."""
    if model_config is None:
        return None
    added = {k: v for k, v in options_added_later(model).items() if k not in model_config}
    return {**model_config, **added}


LEGACY_SUFFIXES = (".pt", ".pth", ".bin")


class WrongFamilyError(PerfexError):
    """A checkpoint of the other model family was given to a script."""

    def __init__(self, path: Path, found: str, expected: str) -> None:
        super().__init__(f"{path} holds a {found} model but this script runs {expected} models")
        self.found, self.expected = found, expected


def check_family(meta: CheckpointMeta, family: str | None, path: Path) -> None:
    """Refuse a checkpoint of the other model family (``family`` None: any)."""
    if family is not None and meta.family != family:
        raise WrongFamilyError(path, meta.model, family)


def config_path(weights_path: Path) -> Path:
    return weights_path.with_suffix(".json")


def resolve_weights(path: str | Path) -> Path:
    """Accept a weights file, its JSON config, or a run directory (its best checkpoint)."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.safetensors"
    elif path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.exists():
        raise PerfexError(f"weights {path} not found; pass --weights with a .safetensors checkpoint, a run directory or an original .pt file")
    return path


def read_config(weights_path: str | Path) -> CheckpointMeta:
    """The metadata JSON beside a weights file (schema-1 files are migrated)."""
    json_path = config_path(Path(weights_path))
    try:
        raw = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise PerfexError(f"{json_path} is missing: a checkpoint needs its JSON metadata beside the .safetensors file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PerfexError(f"{json_path} is not valid JSON ({err}); the checkpoint is corrupted") from None
    return CheckpointMeta.from_json(raw, where=str(json_path))
