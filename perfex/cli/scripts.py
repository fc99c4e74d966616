"""Command-line front ends: every top-level script is one call into ``main``.

Each script offers only the flags that do something in it; their defaults come from ``perfex.data.options``. Parsing
happens before any heavy import, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import MISSING, Field, fields
from pathlib import Path
from typing import Any

from models.registry import MODELS, families, script_prefix

from ..core.errors import PerfexError
from ..data.options import (DataOptions, DeployOptions, RetrainOptions, RunOptions, TestOptions, TrainOptions, default,
                            flag_of)
from ..core.paths import DATA_DIR, PROJECT_ROOT
from ..data.readers.formats import titles

MODEL_TITLES = {name: MODELS[name].title for name in families()}
SCRIPT_PREFIX = {name: MODELS[name].script_prefix for name in families()}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and shows every default that is a value (not None or a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or default is None or default is argparse.SUPPRESS or isinstance(default, bool):
            return text
        if not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def new_parser(description: str, epilog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description, epilog=epilog, formatter_class=HelpFormatter)


def declared_flags(options: type) -> dict[str, tuple[str, dict]]:
    """dest -> (flag, argparse keywords) of every option ``options`` declares with ``option(...)``."""
    return {f.name: (flag_of(f), {"help": f.metadata["help"], **f.metadata["argparse"]})
            for f in fields(options) if "help" in f.metadata}


DATA_FLAGS = declared_flags(DataOptions)  # each script picks the ones it uses
RUN_FLAGS = [name for name in declared_flags(RunOptions) if name != "progress"]  # --no-progress stands apart


def run_name(family: str | None, command: str | None) -> str:
    """The run directory's name before its time: 'cnn', 'cnn-retrain'."""
    return f"{family}-retrain" if command == "retrain" else str(family)


def parse_default(options: type, f: Field, command: str | None, family: str | None) -> Any:
    """The command line's default of a declared option: its ``parse_default`` (a value or a function of the family),
    else the command's default from the config."""
    given = f.metadata["parse_default"]
    if given is MISSING:
        return default(options, f.name, command)
    return given(family) if callable(given) else given


def add_declared(group: argparse._ActionsContainer, options: type, names: Sequence[str], command: str | None = None,
                 family: str | None = None) -> None:
    """The named options of ``options`` as flags of ``group``, each generated from its ``option(...)`` declaration."""
    declared = {f.name: f for f in fields(options)}
    for name in names:
        f = declared[name]
        group.add_argument(flag_of(f), dest=name, default=parse_default(options, f, command, family),
                           help=f.metadata["help"].format(run=run_name(family, command)), **f.metadata["argparse"])


def add_data_flags(parser: argparse.ArgumentParser, names: Sequence[str], data_default: list[str] | None, data_help: str) -> None:
    parser.add_argument("--data", nargs="+", default=data_default, metavar="PATH",
                        help=f"{data_help} {titles('and/or')} files (.csv/.csv.gz) or directories")
    add_data_options(parser, names)


def add_data_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """The named data flags (``DATA_FLAGS``) with their one default from ``DataOptions``, as a "data" group."""
    add_declared(parser.add_argument_group("data"), DataOptions, names)


def add_run_flags(parser: argparse.ArgumentParser, names: Sequence[str], command: str) -> None:
    add_declared(parser.add_argument_group("run"), RunOptions, names, command)
    add_declared(parser, RunOptions, ["progress"], command)


def train_parser(family: str, retrain: bool) -> argparse.ArgumentParser:
    script = f"{SCRIPT_PREFIX[family]}_{'retrain' if retrain else 'train'}.py"
    if retrain:
        description = (f"Fine-tune a trained {MODEL_TITLES[family]} on user-study ratings (same schema as the training "
                       "data). The new checkpoint records its parent and iteration.")
        epilog = (f"examples:\n  python {script}\n  python {script} --weights runs/{family}/best.safetensors "
                  f"--data study.csv --replay-data data/train.csv.gz --replay-fraction 0.3\n"
                  f"  python {script} --config runs/{family}-retrain-x/run_config.json --out runs/again\n"
                  f"  torchrun --nproc_per_node=2 {script} ...   (same flags, DistributedDataParallel)")
        data_default = [str(DATA_DIR / "user_study.csv.gz")]
    else:
        description = (f"Train the {MODEL_TITLES[family]} on PerFeX AU time series: batched, validated every epoch on "
                       "source-video-disjoint clips, best/last checkpoints, early stopping.")
        epilog = (f"examples:\n  python {script}\n  python {script} --data my_perfex.csv --out runs/mine --epochs 100\n"
                  f"  python {script} --data openface_dir/ --labels annotation_training.pkl --label-binning round\n"
                  f"  python {script} --config runs/{family}-x/run_config.json --seed 1 --out runs/seed1\n"
                  f"  python {script} --folds 5 --out runs/cv-{family}   (5-fold cross-validation, docs/crossval.md)\n"
                  f"  torchrun --nproc_per_node=4 {script} --data big.csv   (DistributedDataParallel)")
        data_default = [str(DATA_DIR / "train.csv.gz")]
    parser = new_parser(description, epilog)
    parser.add_argument("--config", metavar="JSON", help="replay a saved run_config.json; flags given here win")
    names = [n for n in DATA_FLAGS if n not in (("features", "normalize") if retrain else ("allow_extractor_mismatch",))]
    add_data_flags(parser, names, data_default, "training data.")
    _add_training_flags(parser, family, retrain)
    add_run_flags(parser, list(RUN_FLAGS), "retrain" if retrain else "train")
    return parser


def _add_training_flags(parser: argparse.ArgumentParser, family: str, retrain: bool) -> None:
    group = parser.add_argument_group("training")
    command = "retrain" if retrain else "train"
    replay = [name for name in declared_flags(RetrainOptions) if name != "weights"]
    if retrain:
        add_declared(group, RetrainOptions, ["weights"], command, family)
    scratch_only = ("folds", "loss", "target") if retrain else ()
    add_declared(group, TrainOptions, [n for n in declared_flags(TrainOptions) if n not in scratch_only], command, family)
    if retrain:
        add_declared(group, RetrainOptions, replay, command, family)


def _parse_with_saved_config(parser: argparse.ArgumentParser, argv: Sequence[str] | None, family: str, retrain: bool) -> dict:
    """Parse ``argv``; with ``--config``, the saved run's options become the defaults, so given flags win."""
    from ..data.options import read_run_config

    first = vars(parser.parse_args(argv))
    if not first.get("config"):
        return first
    saved = read_run_config(first["config"])
    if saved["family"] != family or saved["retrain"] != retrain:
        kind = "retrain" if saved["retrain"] else "train"
        raise PerfexError(f"--config {first['config']} is a {saved['family']} {kind} run; replay it with "
                          f"{script_prefix(saved['family'])}_{kind}.py")
    known = {action.dest for action in parser._actions}
    parser.set_defaults(**{k: v for k, v in saved["options"].items() if k in known and k not in ("out", "resume")})
    return vars(parser.parse_args(argv))


def given(argv: Sequence[str], flag: str) -> bool:
    """Whether ``flag`` is on the command line (as ``--flag value`` or ``--flag=value``)."""
    return any(a == flag or a.startswith(f"{flag}=") for a in argv)


def run_train(family: str, retrain: bool, argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not retrain and given(argv, "--weights"):
        raise PerfexError(f"train starts from scratch and takes no --weights; to fine-tune a checkpoint use "
                          f"{SCRIPT_PREFIX[family]}_retrain.py --weights ...")
    args = _parse_with_saved_config(train_parser(family, retrain), argv, family, retrain)
    args.pop("config")
    args["out"] = args["out"] or str(PROJECT_ROOT / "runs" / f"{run_name(family, 'retrain' if retrain else 'train')}-{timestamp()}")
    from ..data.options import TrainConfig, build_config

    config = build_config(TrainConfig, family, retrain=retrain, **args)
    if config.train.folds:
        if given(argv, "--test-fraction"):
            raise PerfexError("--folds holds out each fold in turn as the test part; drop --test-fraction (or --folds)")
        from ..evaluate.crossval import run_crossval

        run_crossval(config)
        return 0
    from ..train.loop import fit

    fit(config)
    return 0


def test_parser(family: str) -> argparse.ArgumentParser:
    script = f"{SCRIPT_PREFIX[family]}_test.py"
    parser = new_parser(
        f"Evaluate a {MODEL_TITLES[family]} checkpoint on held-out clips beside three baselines (majority class, "
        "train-mean predictor, logistic regression on per-clip AU mean/std): accuracy, macro P/R/F1, ROC AUC, "
        "MAE, Pearson r, bootstrap 95% CI, confusion matrices.",
        f"examples:\n  python {script}\n  python {script} --weights runs/x/best.safetensors\n"
        f"  python {script} --weights cnn_180.pt --data perfex_test.csv --subset all --train-data perfex_train.csv\n"
        f"  python {script} --weights runs/cv-cnn runs/cv-attn   (cross-validation runs: both networks per fold)")
    add_data_flags(parser, ["labels", "label_binning", "nan_policy", "min_confidence", "min_frames", "allow_extractor_mismatch",
                             "cache_dir"], None,
                    "labelled data (default: the data and labels table recorded in the checkpoint).")
    add_declared(parser.add_argument_group("evaluation"), TestOptions, list(declared_flags(TestOptions)), "test", family)
    add_run_flags(parser, ["batch_size", "seed", "device", "threads", "precision"], "test")
    return parser


def run_test(family: str, argv: Sequence[str] | None) -> int:
    parser = test_parser(family)
    args = vars(parser.parse_args(argv))
    args["out"] = args["out"] or str(PROJECT_ROOT / "outputs" / f"{family}-test-{timestamp()}")
    weights = args["weights"] if isinstance(args["weights"], list) else [args["weights"]]
    from ..evaluate.crossval_report import is_cv_run

    if any(map(is_cv_run, weights)):
        return run_cv_test(parser, args, weights)
    if len(weights) > 1:
        raise PerfexError("--weights takes one checkpoint; more than one path only for cross-validation run directories "
                          "(train --folds)")
    args["weights"] = weights[0]
    args["data"] = args["data"] or []
    from ..evaluate.evaluation import evaluate_checkpoint
    from ..data.options import TestConfig, build_config

    results = evaluate_checkpoint(build_config(TestConfig, family, **args))
    print(f"evaluated on {results['evaluated_on']}\n\n{results['markdown']}\n\nwrote {args['out']}/results.json, results.md, "
          "predictions.csv, confusion_matrices.png")
    return 0


def changed_flags(parser: argparse.ArgumentParser, args: dict, ignore: Sequence[str]) -> list[str]:
    """The flags whose parsed value is not their default, leaving out the dests in ``ignore``."""
    flags = {action.dest: action.option_strings[0] for action in parser._actions if action.option_strings}
    return [flags[dest] for dest, value in args.items() if dest not in ignore and value != parser.get_default(dest)]


def run_cv_test(parser: argparse.ArgumentParser, args: dict, runs: list[str]) -> int:
    """Print and write the report of cross-validation run directories: their networks and the baselines per fold."""
    from ..evaluate.crossval_report import merge_cv_runs, write_report

    extra = changed_flags(parser, args, ("weights", "out", "progress"))
    if extra:
        raise PerfexError(f"{extra[0]} does not apply to cross-validation run directories (their report was computed "
                          "when they were trained); pass only --weights and --out")
    markdown = write_report(Path(args["out"]), merge_cv_runs(runs))
    print(f"{markdown}\nwrote {args['out']}/cv_report.json, cv_report.md")
    return 0


def deploy_parser(family: str) -> argparse.ArgumentParser:
    script = f"{SCRIPT_PREFIX[family]}_deploy.py"
    parser = new_parser(
        f"Predict Big Five trait levels with a {MODEL_TITLES[family]} for every clip of {titles()} inputs. "
        "Every input clip gets a row (with a status); nothing is dropped.",
        f"examples:\n  python {script}\n  python {script} --data openface_out/ --out traits.csv\n"
        f"  python {script} --weights attn_180.pt --data clips.csv --per-frame rows.csv   (original weights)\n"
        f"  python {script} --data big.csv --shard 0/2 --out part0.csv; ... --shard 1/2 --out part1.csv\n"
        f"  python {script} --merge part0.csv part1.csv --out traits.csv\n\n"
        "statuses: ok, windowed (long clip: windows averaged), too_short, short_predicted, no_frames")
    add_data_flags(parser, ["nan_policy", "min_confidence", "min_frames", "allow_extractor_mismatch"],
                    [str(DATA_DIR / "deploy.csv.gz")], "input.")
    group = parser.add_argument_group("output")
    names = list(declared_flags(DeployOptions))
    add_declared(group, DeployOptions, names[:names.index("chunk_rows")], "deploy", family)
    group.add_argument("--merge", nargs="+", metavar="CSV", help="merge per-clip CSVs written with --shard into --out, then exit")
    add_declared(group, DeployOptions, names[names.index("chunk_rows"):], "deploy", family)
    add_run_flags(parser, ["batch_size", "device", "threads", "precision"], "deploy")
    return parser


def run_deploy(family: str, argv: Sequence[str] | None) -> int:
    args = vars(deploy_parser(family).parse_args(argv))
    merge = args.pop("merge")
    if merge:
        if not args["out"]:
            raise PerfexError("--merge needs --out: the per-clip CSV to write")
        from ..infer.deploy import merge_shards

        summary = merge_shards(merge, args["out"], force=args["force"])
        print(f"merged {summary['shards']} shards: {summary['clips_written']} clips -> {summary['out']}")
        return 0
    args["out"] = args["out"] or str(PROJECT_ROOT / "outputs" / f"{family}-deploy-{timestamp()}.csv")
    from ..infer.deploy import deploy
    from ..data.options import DeployConfig, build_config

    summary = deploy(build_config(DeployConfig, family, **args))  # reads the first chunk while the engine loads
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary["status_counts"].items()))
    print(f"{summary['clips_written']} of {summary['clips_in_input']} clips written ({statuses}) -> {summary['out']} "
          f"[{summary['runtime']}]")
    if summary.get("per_frame"):
        print(f"per-frame rows -> {summary['per_frame']}")
    if summary.get("explanations"):
        print(f"explanations -> {summary['explanations']} (largest integrated-gradients completeness gap "
              f"{summary['max_completeness_delta']:.3g}; see docs/explain.md)")
    return 0


def augment_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "Augment PerFeX clips as the original did (every 2nd frame; 5-frame shift with edge fill; non-overlapping "
        "100-frame windows). Output = input clips + copies with new IDs and provenance columns source_id, augmentation, "
        "so splits keep every copy with its source video.",
        "examples:\n  python data_augmentation.py\n  python data_augmentation.py --data train.csv --out train_aug.csv.gz "
        "--window-frames 150 --no-shift")
    parser.add_argument("--data", nargs="+", default=[str(DATA_DIR / "train.csv.gz")], metavar="PATH", help="PerFeX long CSV(s) to augment")
    parser.add_argument("--out", help="output CSV or CSV.GZ (default: outputs/<first input>_augmented.csv.gz)")
    parser.add_argument("--subsample-step", type=int, default=2, help="keep every n-th frame (0 disables)")
    parser.add_argument("--shift-frames", type=int, default=5, help="delay by n frames, edge-filled (0 disables)")
    parser.add_argument("--window-frames", type=int, default=100, help="non-overlapping windows of n frames (0 disables)")
    parser.add_argument("--no-subsample", action="store_true", help="disable the every-n-th-frame copy")
    parser.add_argument("--no-shift", action="store_true", help="disable the shifted copy")
    parser.add_argument("--no-windows", action="store_true", help="disable the window copies")
    parser.add_argument("--no-original", action="store_true", help="write only the augmented copies")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    return parser


def run_augment(argv: Sequence[str] | None) -> int:
    args = augment_parser().parse_args(argv)
    from ..data.augment import AugmentConfig, augment_files
    from ..data.readers import expand_inputs
    from ..core.tables import refuse_overwrite

    inputs = expand_inputs(args.data)
    out = Path(args.out or PROJECT_ROOT / "outputs" / f"{inputs[0].name.split('.')[0]}_augmented.csv.gz")
    refuse_overwrite(out, args.force)
    config = AugmentConfig(
        subsample_step=0 if args.no_subsample else args.subsample_step,
        shift_frames=0 if args.no_shift else args.shift_frames,
        window_frames=0 if args.no_windows else args.window_frames,
        keep_original=not args.no_original,
    )
    counts = augment_files(inputs, out, config)
    made = ", ".join(f"{n} {k}" for k, n in counts.items() if k not in ("rows", "input_clips"))
    print(f"{counts['input_clips']} input clips -> {made} ({counts['rows']} rows) -> {out}")
    return 0


def is_user_error(err: Exception) -> bool:
    """Bad input or options: a PerfexError, or a model's ModelError (looked up only once the models are loaded, so
    that --help never imports torch)."""
    if isinstance(err, PerfexError):
        return True
    model_errors = sys.modules.get("models.errors")
    return model_errors is not None and isinstance(err, model_errors.ModelError)


def _error_message(err: Exception) -> str:
    """One line for the user; a wrong-family checkpoint names the scripts that run it."""
    from ..checkpoint.metadata import WrongFamilyError

    if isinstance(err, WrongFamilyError):
        return f"{err}; use the {script_prefix(err.found)}_*.py scripts with it"
    return str(err)


def run_command(action: Callable[[], int]) -> None:
    """Run one script's work and leave with its status; bad input ends with one line on stderr and exit status 2."""
    try:
        code = action()
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`): nothing left to say
        os._exit(0)
    except Exception as err:
        if not is_user_error(err):
            raise
        print(f"{Path(sys.argv[0]).name}: error: {_error_message(err)}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    # The interpreter still shuts down as usual (threads joined, atexit run, modules cleared), but its last garbage
    # collections no longer walk the ~180 k objects torch and the data left behind: 0.2 s less per script run.
    gc.freeze()
    sys.exit(code)


def main(command: str, model: str | None = None, argv: Sequence[str] | None = None) -> None:
    """Entry point of the train, retrain, test, deploy and augment scripts."""
    actions: dict[str, Callable[[], int]] = {
        "train": lambda: run_train(model, False, argv),
        "retrain": lambda: run_train(model, True, argv),
        "test": lambda: run_test(model, argv),
        "deploy": lambda: run_deploy(model, argv),
        "augment": lambda: run_augment(argv),
    }
    run_command(actions[command])
