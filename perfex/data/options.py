"""Run options: one ``DataOptions`` and one ``RunOptions``, composed by the train, test and deploy configs.

Every default lives here once, per-command ones (retrain, batch sizes) in ``COMMAND_DEFAULTS``; the command line
builds these from the flags each script takes, and a saved ``run_config.json`` replays them (``--config``). An option
declared with ``option(...)`` also carries its flag, help, choices and range: the parser and the check derive from it.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from models.registry import families

from ..core.errors import PerfexError
from .readers.formats import confidence_help, titles

NAN_POLICIES = ("error", "drop-frames", "interpolate")
NORMALIZATIONS = ("global", "clip-median")
LABEL_BINNINGS = ("round", "floor", "quantile")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
RUNTIMES = ("auto", "torch", "onnxruntime")
SUBSETS = ("test", "val", "train", "all")
FAMILIES = families()  # the models with scripts, from models/registry.py
LOSSES = ("ce", "ordinal")
SELECTIONS = ("loss", "qwk", "f1")
TARGETS = ("levels", "continuous")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PerfexError(message)


@dataclass(frozen=True)
class Check:
    """A range an option's value must be in: ``test(value)``, worded as "must be <words>"."""

    test: Callable[[Any], bool]
    words: str


def at_least(low: float) -> Check:
    return Check(lambda v: v >= low, f"at least {low}")


def between(low: float, high: float) -> Check:
    return Check(lambda v: low <= v <= high, f"between {low} and {high}")


def option(default: Any, help: str, *, flag: str | None = None, choices: Sequence[str] | None = None,
           check: Check | None = None, parse_choices: Sequence[str] | None = None, **argparse_keywords: Any) -> Any:
    """A dataclass field declared once: default, flag (default ``--<name>``), help, choices (checked), range,
    ``parse_choices`` (offered on the command line only) and other argparse keywords."""
    shown = choices or parse_choices
    meta = {"flag": flag, "help": help, "choices": choices, "check": check,
            "argparse": {**({"choices": shown} if shown else {}), **argparse_keywords}}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def flag_of(f: Field) -> str:
    """The command-line flag of a declared option (``--min-confidence`` for ``min_confidence``)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def check_options(options: object) -> None:
    """Validate every declared option of ``options`` once, naming its flag, the value and its default."""
    for f in fields(options):
        if "help" not in f.metadata:
            continue
        value, choices, check = getattr(options, f.name), f.metadata["choices"], f.metadata["check"]
        if choices is not None:
            _require(value in choices, f"{flag_of(f)} {value!r} is not one of {', '.join(choices)}")
        if check is not None and value is not None:
            _require(check.test(value), f"{flag_of(f)} {value} must be {check.words} (default {f.default:g})")


@dataclass
class DataOptions:
    """Which clips to read and how: inputs, labels, binning, NaN policy, confidence, length floor, columns,
    per-clip normalisation, whether another extractor's output may be used, cache."""

    data: list[str] = field(default_factory=list)
    labels: str | None = option(None, f"labels for {titles(long=False)} inputs (and PerFeX clips without trait columns): CSV "
                                "with File + five traits, the ChaLearn 2016 CSV (VideoName,ValueExtraversion,...) or a "
                                "ChaLearn annotation_*.pkl", metavar="FILE")
    label_binning: str | None = option(None, "how to turn off-grid trait scores (e.g. raw First Impressions values) "
                                       "into 5 levels; on-grid values (0, .25, .5, .75, 1) need none",
                                       parse_choices=LABEL_BINNINGS)  # a replayed run may hold 'grid' or 'quantile:...'
    nan_policy: str = option("error", "what to do with NaN/inf AU values", flag="--nan", choices=NAN_POLICIES)
    min_confidence: float = option(0.8, f"drop low-confidence frames of extractor inputs ({confidence_help()})",
                                   check=between(0, 1), type=float)
    min_frames: int = option(40, "clips with fewer frames are skipped and reported (the original kept > 40)",
                             check=at_least(1), type=int)
    features: str = option("au", "input columns: au (the 17 AU intensities), au+gaze, au+pose, au+gaze+pose (the 22 "
                           "inputs of the authors' later work; OpenFace only) or comma-separated column names")
    normalize: str = option("global", "clip-median: subtract each clip's per-feature median before the global "
                            "standardisation (reduces person-specific resting faces)", choices=NORMALIZATIONS)
    allow_extractor_mismatch: bool = option(False, "use inputs from another AU extractor or scale than the weights were "
                                            "trained on (their predictions may mean little)", action="store_true")
    cache_dir: str | None = option(None, "cache parsed CSVs here (keyed by file hash) so the next load is faster",
                                   metavar="DIR")

    def __post_init__(self) -> None:
        self.data = [str(p) for p in self.data]
        check_options(self)
        binning = self.label_binning
        _require(binning in (None, "grid", *LABEL_BINNINGS) or str(binning).startswith("quantile:"),
                 f"--label-binning {binning!r} is not one of {', '.join(LABEL_BINNINGS)}")


@dataclass
class RunOptions:
    """Where and how a run computes: device, batch size, seed, loader workers, threads, precision, progress bars."""

    device: str = "auto"
    batch_size: int = 32
    seed: int = 0
    workers: int = 0
    threads: int | None = None
    precision: str = "fp32"
    progress: bool = True

    def __post_init__(self) -> None:
        _require(self.device in DEVICES, f"--device {self.device!r} is not one of {', '.join(DEVICES)}")
        _require(self.precision in PRECISIONS, f"--precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        _require(self.batch_size >= 1, f"--batch-size {self.batch_size} must be at least 1")
        _require(self.workers >= 0, f"--workers {self.workers} must be 0 or more")
        _require(self.threads is None or self.threads >= 1, f"--threads {self.threads} must be at least 1")


@dataclass
class TrainOptions:
    """The optimisation loop and its run directory."""

    out: str = ""
    epochs: int = 60
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 15
    lr_patience: int = 2
    min_crop: float = 1.0
    max_frames: int = 700
    split: str | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    resume: bool = False
    record_samples: bool = False
    loss: str = "ordinal"
    target: str = "levels"
    select: str = "loss"
    calibrate: bool = True
    folds: int | None = None

    def __post_init__(self) -> None:
        _require(self.target in TARGETS, f"--target {self.target!r} is not one of {', '.join(TARGETS)}")
        _require(self.loss in LOSSES, f"--loss {self.loss!r} is not one of {', '.join(LOSSES)}")
        _require(self.select in SELECTIONS, f"--select {self.select!r} is not one of {', '.join(SELECTIONS)}")
        _require(self.epochs >= 1, f"--epochs {self.epochs} must be at least 1")
        _require(self.lr > 0, f"--lr {self.lr} must be positive (e.g. 1e-3)")
        _require(self.patience >= 1, f"--patience {self.patience} must be at least 1")
        _require(self.lr_patience >= 0, f"--lr-patience {self.lr_patience} must be 0 (never) or more")
        _require(0 < self.min_crop <= 1, f"--min-crop {self.min_crop} must be in (0, 1] (1: whole clips)")
        _require(self.max_frames >= 8, f"--max-frames {self.max_frames} must be at least 8 (default 700)")
        _require(0 < self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1,
                 "--val-fraction and --test-fraction must be in [0, 1) and leave training clips (defaults 0.15, 0.15)")
        _require(self.folds is None or self.folds >= 2, f"--folds {self.folds} must be at least 2 (e.g. 5); omit it to "
                 "train on one train/validation/test split")
        _require(self.folds is None or self.split is None, "--folds makes a split for every fold; drop --split (or --folds)")
        _require(self.folds is None or not self.resume, "--folds runs cannot be resumed; drop --resume and choose a new --out")


# Defaults that differ by command, over the fields' own. Fine-tuning starts from trained weights: fewer epochs and a
# smaller step than training from scratch. Deploy: 32 windows a batch ran both models faster than 64 end to end
# (README, performance).
COMMAND_DEFAULTS: dict[str, dict[str, Any]] = {
    "train": {"batch_size": 32},
    "retrain": {"batch_size": 32, "epochs": 30, "lr": 3e-4},
    "test": {"batch_size": 64},
    "deploy": {"batch_size": 32},
}


def default(options: type, name: str, command: str | None = None) -> Any:
    """The one default of option ``name`` of ``options`` (a dataclass), for ``command`` when it has its own."""
    if name in COMMAND_DEFAULTS.get(command, {}):
        return COMMAND_DEFAULTS[command][name]
    f = next(f for f in fields(options) if f.name == name)
    return f.default_factory() if f.default is MISSING else f.default


@dataclass
class RetrainOptions:
    """What makes a run a fine-tuning run: the parent checkpoint, replay against forgetting, a frozen encoder."""

    weights: str = ""
    replay_data: list[str] = field(default_factory=list)
    replay_fraction: float = 0.0
    freeze_encoder: bool = False

    def __post_init__(self) -> None:
        _require(bool(self.weights), "retrain needs --weights: the checkpoint to fine-tune (e.g. weights/cnn.safetensors)")
        _require(0 <= self.replay_fraction < 1, f"--replay-fraction {self.replay_fraction} must be in [0, 1) (e.g. 0.3)")
        _require(self.replay_fraction == 0 or bool(self.replay_data),
                 "--replay-fraction needs --replay-data: the original training data to mix in")


@dataclass
class TrainConfig:
    """One train or retrain run; ``retrain`` is None when training from scratch."""

    family: str
    data: DataOptions
    run: RunOptions
    train: TrainOptions
    retrain: RetrainOptions | None = None

    def __post_init__(self) -> None:
        _require(self.family in FAMILIES, f"unknown model family {self.family!r}; use one of {', '.join(FAMILIES)}")


@dataclass
class TestOptions:
    """Which checkpoint to test, on which part of which split, with how many bootstrap resamples."""

    __test__ = False  # not a pytest test class

    weights: str = ""
    out: str = ""
    split: str | None = None
    subset: str = "test"
    train_data: list[str] | None = None
    n_boot: int = 1000
    importance: bool = False

    def __post_init__(self) -> None:
        _require(self.subset in SUBSETS, f"--subset {self.subset!r} is not one of {', '.join(SUBSETS)}")
        _require(self.n_boot >= 0, f"--bootstrap {self.n_boot} must be 0 or more")


@dataclass
class TestConfig:
    """One test run."""

    __test__ = False  # not a pytest test class
    family: str
    data: DataOptions
    run: RunOptions
    test: TestOptions


@dataclass
class DeployOptions:
    """Where deploy writes, and how it walks the input."""

    weights: str = ""
    out: str = ""
    per_frame: str | None = None
    force: bool = False
    predict_short: bool = False
    shard: str | None = None
    chunk_rows: int = 500_000
    explain: str | None = None
    explain_plots: int = 10
    runtime: str = "auto"

    def __post_init__(self) -> None:
        _require(self.chunk_rows >= 1, f"--chunk-rows {self.chunk_rows} must be at least 1")
        _require(self.runtime in RUNTIMES, f"--runtime {self.runtime!r} is not one of {', '.join(RUNTIMES)}")


@dataclass
class DeployConfig:
    """One deploy run."""

    family: str
    data: DataOptions
    run: RunOptions
    deploy: DeployOptions


C = TypeVar("C")


def _part_types(config_class: type) -> dict[str, type]:
    hints = {"data": DataOptions, "run": RunOptions, "train": TrainOptions, "retrain": RetrainOptions,
             "test": TestOptions, "deploy": DeployOptions}
    return {f.name: hints[f.name] for f in fields(config_class) if f.name in hints}


def command_of(config_class: type, retrain: bool = False) -> str:
    """The command a config class serves: train, retrain, test or deploy (keys of ``COMMAND_DEFAULTS``)."""
    if config_class is TrainConfig:
        return "retrain" if retrain else "train"
    return {TestConfig: "test", DeployConfig: "deploy"}[config_class]


def build_config(config_class: type[C], family: str, retrain: bool = False, **flat: Any) -> C:
    """A composed config from flat option names (as the flags give them): each name goes to the part that owns it;
    options not given take the command's defaults (a retrain: 30 epochs at 3e-4, as its script)."""
    parts = {}
    left = {**COMMAND_DEFAULTS[command_of(config_class, retrain)], **flat}
    for name, part in _part_types(config_class).items():
        if name == "retrain" and not retrain:
            continue
        known = {f.name for f in fields(part)}
        parts[name] = part(**{k: left.pop(k) for k in list(left) if k in known})
    if left:
        raise PerfexError(f"unknown option(s) {', '.join(sorted(left))} for {config_class.__name__}")
    return config_class(family=family, **parts)


def flatten(config: object) -> dict[str, Any]:
    """The flat option names and values of a composed config (the inverse of ``build_config``)."""
    flat: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if is_dataclass(value):
            flat.update(asdict(value))
    return flat


def save_run_config(config: object, path: Path) -> None:
    """Write the composed config as JSON: ``{"family": ..., "data": {...}, "run": {...}, ...}``."""
    Path(path).write_text(json.dumps(asdict(config), indent=1) + "\n")


def read_run_config(path: str | Path) -> dict[str, Any]:
    """A saved run configuration as ``{"family": ..., "retrain": bool, "options": flat dict}``."""
    from ..core.tables import read_json

    saved = read_json(path, "pass the run_config.json of an earlier run", "--config")
    if not isinstance(saved, dict) or "family" not in saved:
        raise PerfexError(f"--config {path} is not a PerFeX run configuration (no 'family' field)")
    flat = {}
    for value in saved.values():
        if isinstance(value, dict):
            flat.update(value)
    return {"family": saved["family"], "retrain": isinstance(saved.get("retrain"), dict), "options": flat}
