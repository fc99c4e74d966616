"""Run options: one ``DataOptions`` and one ``RunOptions``, composed by the train, test and deploy configs.

Every default lives here once, per-command ones (retrain, batch sizes) in ``COMMAND_DEFAULTS``; the command line
builds these from the flags each script takes, and a saved ``run_config.json`` replays them (``--config``). An option
declared with ``option(...)`` also carries its flag, help, choices and range: the parser and the check derive from it.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from models.registry import families

from ..core.errors import PerfexError
from ..core.paths import WEIGHTS_DIR
from ..core.schema import SPEC_HELP, parse_targets
from .readers.formats import confidence_help, titles
from .readers.options import NAN_POLICIES, NORMALIZATIONS, ReadOptions  # the readers' vocabularies and checks
LABEL_BINNINGS = ("round", "floor", "quantile")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
RUNTIMES = ("auto", "torch", "onnxruntime")
SUBSETS = ("test", "val", "train", "all")
FAMILIES = families()  # the models with scripts, from models/registry.py
LOSSES = ("ce", "ordinal")
SELECTIONS = ("loss", "qwk", "f1")
TARGETS = ("levels", "continuous")
PREDICTION_KINDS = ("level", "score")  # au_analysis: a deploy CSV's level columns or <trait>_score


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


def shipped_weights(family: str) -> str:
    """The checkpoint a family's scripts use when no --weights is given."""
    return str(WEIGHTS_DIR / f"{family}.safetensors")


def option(default: Any, help: str, *, flag: str | None = None, choices: Sequence[str] | None = None,
           check: Check | None = None, parse_choices: Sequence[str] | None = None, parse_default: Any = MISSING,
           **argparse_keywords: Any) -> Any:
    """A dataclass field declared once: default, flag (default ``--<name>``), help, choices (checked), range,
    ``parse_choices`` (offered on the command line only), ``parse_default`` (the command line's, when it differs: a
    value, or a function of the model family) and other argparse keywords. ``{run}`` in a help names the run."""
    shown = choices or parse_choices
    meta = {"flag": flag, "help": help, "choices": choices, "check": check, "parse_default": parse_default,
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
            _require(check.test(value), f"{flag_of(f)} {value} must be {check.words}{_default_words(f)}")


def _default_words(f: Field) -> str:
    """' (default 0.8)' for an option with a numeric default, else ''."""
    numeric = isinstance(f.default, (int, float)) and not isinstance(f.default, bool)
    return f" (default {f.default:g})" if numeric else ""


@dataclass
class DataOptions:
    """Which clips to read and how: inputs, labels, binning, NaN policy, confidence, length floor, columns,
    per-clip normalisation, whether another extractor's output may be used, cache."""

    data: list[str] = field(default_factory=list)
    labels: str | None = option(None, f"labels for {titles(long=False)} inputs (and PerFeX clips without the label "
                                "columns): CSV with File + the five traits (or the --targets columns), the ChaLearn 2016 "
                                "CSV (VideoName,ValueExtraversion,...) or a ChaLearn annotation_*.pkl", metavar="FILE")
    label_binning: str | None = option(None, "how to turn off-grid scores in [0, 1] (e.g. raw First Impressions values) "
                                       "into each level target's levels; on-grid values (0, .25, .5, .75, 1 for five "
                                       "levels) need none",
                                       parse_choices=LABEL_BINNINGS)  # a replayed run may hold 'grid' or 'quantile:...'
    # nan_policy, min_confidence and normalize are checked by ReadOptions, the readers' own boundary, in one wording
    nan_policy: str = option("error", "what to do with NaN/inf AU values", flag="--nan", parse_choices=NAN_POLICIES)
    min_confidence: float = option(0.8, f"drop low-confidence frames of extractor inputs ({confidence_help()})",
                                   type=float)
    min_frames: int = option(40, "clips with fewer frames are skipped and reported (the original kept > 40)",
                             check=at_least(1), type=int)
    features: str = option("au", "input columns: au (the 17 AU intensities), au+gaze, au+pose, au+gaze+pose (the 22 "
                           "inputs of the authors' later work; OpenFace only) or comma-separated column names")
    normalize: str = option("global", "clip-median: subtract each clip's per-feature median before the global "
                            "standardisation (reduces person-specific resting faces)", parse_choices=NORMALIZATIONS)
    allow_extractor_mismatch: bool = option(False, "use inputs from another AU extractor or scale than the weights were "
                                            "trained on (their predictions may mean little)", action="store_true")
    cache_dir: str | None = option(None, "cache parsed CSVs here (keyed by file hash) so the next load is faster",
                                   metavar="DIR")

    def __post_init__(self) -> None:
        self.data = [str(p) for p in self.data]
        check_options(self)
        ReadOptions(nan_policy=self.nan_policy, min_confidence=self.min_confidence, normalize=self.normalize)
        binning = self.label_binning
        _require(binning in (None, "grid", *LABEL_BINNINGS) or str(binning).startswith("quantile:"),
                 f"--label-binning {binning!r} is not one of {', '.join(LABEL_BINNINGS)}")


@dataclass
class RunOptions:
    """Where and how a run computes: batch size, seed, device, loader workers, threads, precision, progress bars."""

    batch_size: int = option(32, "clips per batch", check=at_least(1), type=int)
    seed: int = option(0, "random seed", type=int)
    device: str = option("auto", "where to run ('auto' takes a CUDA GPU when there is one)", choices=DEVICES)
    workers: int = option(0, "data-loading worker processes", check=at_least(0), type=int)
    threads: int | None = option(None, "CPU threads (default: OMP_NUM_THREADS when set, else the cores this process may use, "
                                 "shared among torchrun ranks)", check=at_least(1), type=int)
    precision: str = option("fp32", "bf16: bfloat16 autocast (recent GPUs, CPUs with AVX-512 bf16); auto: what pays on "
                            "this device (README, performance)", choices=PRECISIONS)
    progress: bool = option(True, "hide progress bars", flag="--no-progress", parse_default=argparse.SUPPRESS,
                            action="store_false")

    def __post_init__(self) -> None:
        check_options(self)


@dataclass
class TrainOptions:
    """The optimisation loop and its run directory (fields in the order of the training flags)."""

    out: str = option("", "run directory (default: runs/{run}-<time>)", parse_default=None)
    epochs: int = option(60, "maximum epochs", check=at_least(1), type=int)
    lr: float = option(1e-3, "AdamW learning rate", check=Check(lambda v: v > 0, "positive"), type=float)
    weight_decay: float = option(1e-2, "AdamW weight decay", type=float)
    patience: int = option(15, "stop once no trait has improved its validation --select score for this many epochs",
                           check=at_least(1), type=int)
    min_crop: float = option(1.0, "train on a random share in [MIN_CROP, 1] of each clip's frames, drawn anew every epoch "
                             "(augmentation; 1: whole clips)", check=Check(lambda v: 0 < v <= 1, "in (0, 1]"), type=float)
    lr_patience: int = option(2, "halve the learning rate after this many epochs in which no trait improved its "
                              "validation score (0: never)", check=at_least(0), type=int)
    max_frames: int = option(700, "training window: longer clips are randomly cropped", check=at_least(8), type=int)
    split: str | None = option(None, "reuse a split manifest (default: make one, seeded, saved as split.json)",
                               metavar="JSON")
    val_fraction: float = option(0.15, "share of source videos for validation", type=float)
    test_fraction: float = option(0.15, "share of source videos held out for testing", type=float)
    folds: int | None = option(None, "k-fold cross-validation instead of one split: K runs in OUT/fold_1..K, each holding "
                               "out a fold of whole source videos, scored beside the baselines; writes "
                               "oof_predictions.csv, cv_report.json/.md, folds.json (docs/crossval.md)",
                               check=Check(lambda v: v >= 2, "at least 2 (e.g. 5); omit it to train on one "
                                           "train/validation/test split"), type=int, metavar="K")
    loss: str = option("ordinal", "ordinal (default): CORN, which knows the levels are ordered; ce: cross-entropy over "
                       "the five levels (a retrain keeps its parent's)", choices=LOSSES)
    target: str = option("levels", "levels: one of five levels per trait; continuous: one score in [0, 1] per trait, "
                         "trained on the raw labels (levels are the rounded scores)", choices=TARGETS)
    targets: str | None = option(None, f"what to predict (default: the Big Five at five levels): {SPEC_HELP}; "
                                 "e.g. deception:2 or extroversion,openness:continuous (docs/targets.md; a retrain "
                                 "keeps its parent's)", metavar="SPEC")
    timing_score: bool = option(True, "start from clip statistics alone: no timing score from the fixed random dilated "
                                "kernels, which by default each target reads where cross-validation says it helps "
                                "(docs/training.md)", flag="--no-timing-score", action="store_false")
    select: str = option("loss", "which epoch becomes best.safetensors: lowest validation loss, highest QWK or macro-F1",
                         choices=SELECTIONS)
    calibrate: bool = option(True, "skip fitting one temperature per level target on the validation split after training",
                             flag="--no-calibrate", action="store_false")
    resume: bool = option(False, "continue the run in --out from its last checkpoint", action="store_true")
    record_samples: bool = option(False, "write the clip ids each rank trained on (checks DDP sharding)",
                                  action="store_true")

    def __post_init__(self) -> None:
        check_options(self)
        _require(0 < self.val_fraction < 1 and 0 <= self.test_fraction < 1 and self.val_fraction + self.test_fraction < 1,
                 "--val-fraction and --test-fraction must be in [0, 1) and leave training clips (defaults 0.15, 0.15)")
        _require(self.folds is None or self.split is None, "--folds makes a split for every fold; drop --split (or --folds)")
        parse_targets(self.targets)
        _require(self.targets is None or self.target == "levels",
                 "--target continuous scores the five traits in [0, 1]; with --targets give NAME:continuous instead")
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

    weights: str = option("", "checkpoint to fine-tune", parse_default=shipped_weights)
    replay_data: list[str] = option([], "original training data to mix in against forgetting (only its training split "
                                    "is used)", nargs="+", metavar="PATH")
    replay_fraction: float = option(0.0, "share of each epoch's clips taken from --replay-data",
                                    check=Check(lambda v: 0 <= v < 1, "in [0, 1) (e.g. 0.3)"), type=float)
    freeze_encoder: bool = option(False, "train only the model's declared head", action="store_true")

    def __post_init__(self) -> None:
        check_options(self)
        _require(bool(self.weights), "retrain needs --weights: the checkpoint to fine-tune (e.g. weights/cnn.safetensors)")
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

    weights: str = option("", "checkpoint (.safetensors, run directory or original .pt); or one or more cross-validation "
                          "run directories (train --folds, same folds), whose networks and baselines are reported per "
                          "fold", parse_default=shipped_weights, nargs="+", metavar="PATH")
    out: str = option("", "results directory (default: outputs/<model>-test-<time>)", parse_default=None)
    split: str | None = option(None, "split manifest (default: the one stored in the checkpoint)", metavar="JSON")
    subset: str = option("test", "which part of the split to evaluate ('all' only for data the model never saw)",
                         choices=SUBSETS)
    train_data: list[str] | None = option(None, "training data for the baselines when --data holds none", nargs="+",
                                          metavar="PATH")
    n_boot: int = option(1000, "bootstrap resamples for the 95%% CI", flag="--bootstrap", check=at_least(0), type=int)
    importance: bool = option(False, "also rank AUs per target by attribution and permutation importance (importance.md, "
                              "importance.png)", action="store_true")

    def __post_init__(self) -> None:
        check_options(self)


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

    weights: str = option("", "checkpoint (.safetensors, run directory or original .pt)", parse_default=shipped_weights)
    out: str = option("", "per-clip CSV (default: outputs/<model>-deploy-<time>.csv)", parse_default=None)
    per_frame: str | None = option(None, "also write the input rows with a column per target filled (the five traits by default)", metavar="CSV")
    force: bool = option(False, "overwrite existing output files", action="store_true")
    predict_short: bool = option(False, "predict clips below --min-frames too (status short_predicted)",
                                 action="store_true")
    shard: str | None = option(None, "process only every N-th clip starting at K (for N parallel processes)",
                               metavar="K/N")
    chunk_rows: int = option(500_000, "frames read per chunk (bounds memory)", check=at_least(1), type=int)
    explain: str | None = option(None, "also write per-clip explanations (attention, integrated gradients) to "
                                 "DIR/explanations.npz, and PNGs of the first clips", metavar="DIR")
    explain_plots: int = option(10, "with --explain: PNGs of the first N explained clips", type=int, metavar="N")
    runtime: str = option("auto", "what runs the model: auto = ONNX Runtime on CPU when installed and fp32 without "
                          "--explain (faster, no torch import; the graph is exported once per checkpoint), else torch",
                          choices=RUNTIMES)

    def __post_init__(self) -> None:
        check_options(self)


@dataclass
class DeployConfig:
    """One deploy run."""

    family: str
    data: DataOptions
    run: RunOptions
    deploy: DeployOptions


@dataclass
class AnalysisOptions:
    """What au_analysis correlates the AU statistics with, where it writes, and its bootstrap."""

    predictions: str | None = option(None, "a deploy per-clip CSV: correlate with its predictions instead of labels "
                                     "(clips are matched by ID; unpredicted clips are left out)", metavar="CSV")
    prediction_values: str = option("level", "with --predictions: the predicted level columns or the expected "
                                    "<trait>_score", choices=PREDICTION_KINDS)
    targets: str | None = option(None, "the label columns to correlate (default: the Big Five; with --predictions: "
                                 f"every target of the deploy CSV): {SPEC_HELP}", metavar="SPEC")
    out: str = option("", "output directory (default: outputs/au-analysis-<time>)", parse_default=None)
    force: bool = option(False, "overwrite existing output files", action="store_true")
    n_boot: int = option(1000, "bootstrap resamples", flag="--bootstrap", check=at_least(0), type=int)
    seed: int = option(0, "bootstrap seed", type=int)

    def __post_init__(self) -> None:
        check_options(self)
        parse_targets(self.targets)


@dataclass
class AnalysisConfig:
    """One au_analysis run."""

    data: DataOptions
    analysis: AnalysisOptions


C = TypeVar("C")


def _part_types(config_class: type) -> dict[str, type]:
    hints = {"data": DataOptions, "run": RunOptions, "train": TrainOptions, "retrain": RetrainOptions,
             "test": TestOptions, "deploy": DeployOptions, "analysis": AnalysisOptions}
    return {f.name: hints[f.name] for f in fields(config_class) if f.name in hints}


def command_of(config_class: type, retrain: bool = False) -> str:
    """The command a config class serves: train, retrain, test, deploy or analyse (keys of ``COMMAND_DEFAULTS``)."""
    if config_class is TrainConfig:
        return "retrain" if retrain else "train"
    return {TestConfig: "test", DeployConfig: "deploy", AnalysisConfig: "analyse"}[config_class]


def build_config(config_class: type[C], family: str | None = None, retrain: bool = False, **flat: Any) -> C:
    """A composed config from flat option names (as the flags give them): each name goes to the part that owns it;
    options not given take the command's defaults (a retrain: 30 epochs at 3e-4, as its script)."""
    parts = {}
    left = {**COMMAND_DEFAULTS.get(command_of(config_class, retrain), {}), **flat}
    for name, part in _part_types(config_class).items():
        if name == "retrain" and not retrain:
            continue
        known = {f.name for f in fields(part)}
        parts[name] = part(**{k: left.pop(k) for k in list(left) if k in known})
    if left:
        raise PerfexError(f"unknown option(s) {', '.join(sorted(left))} for {config_class.__name__}")
    return config_class(**({} if family is None else {"family": family}), **parts)


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
