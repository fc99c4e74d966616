"""Command-line front ends: every top-level script is one call into ``main``.

Each script offers only the flags that do something in it; their defaults come from ``perfex.data.options``. Parsing
happens before any heavy import, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path

from models.registry import MODELS, families, script_prefix

from ..core.errors import PerfexError
from ..data.options import (DEVICES, LOSSES, PRECISIONS, RUNTIMES, SELECTIONS, SUBSETS, TARGETS, DataOptions, DeployOptions,
                      RetrainOptions, RunOptions, TestOptions, TrainOptions, default, flag_of)
from ..core.paths import DATA_DIR, PROJECT_ROOT, WEIGHTS_DIR
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
RUN_FLAGS: dict[str, tuple[str, dict]] = {
    "batch_size": ("--batch-size", dict(type=int, help="clips per batch")),
    "seed": ("--seed", dict(type=int, help="random seed")),
    "device": ("--device", dict(choices=DEVICES, help="where to run ('auto' takes a CUDA GPU when there is one)")),
    "workers": ("--workers", dict(type=int, help="data-loading worker processes")),
    "threads": ("--threads", dict(type=int, help="CPU threads (default: OMP_NUM_THREADS when set, else the cores this process "
                                                 "may use, shared among torchrun ranks)")),
    "precision": ("--precision", dict(choices=PRECISIONS, help="bf16: bfloat16 autocast (recent GPUs, CPUs with AVX-512 bf16); "
                                                               "auto: what pays on this device (README, performance)")),
}


def _add_group(parser: argparse.ArgumentParser, title: str, options: type, table: dict, names: Sequence[str],
               command: str | None = None) -> None:
    group = parser.add_argument_group(title)
    for name in names:
        flag, keywords = table[name]
        group.add_argument(flag, dest=name, default=default(options, name, command), **keywords)


def add_data_flags(parser: argparse.ArgumentParser, names: Sequence[str], data_default: list[str] | None, data_help: str) -> None:
    parser.add_argument("--data", nargs="+", default=data_default, metavar="PATH",
                        help=f"{data_help} {titles('and/or')} files (.csv/.csv.gz) or directories")
    add_data_options(parser, names)


def add_data_options(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    """The named data flags (``DATA_FLAGS``) with their one default from ``DataOptions``, as a "data" group."""
    _add_group(parser, "data", DataOptions, DATA_FLAGS, names)


def add_run_flags(parser: argparse.ArgumentParser, names: Sequence[str], command: str) -> None:
    _add_group(parser, "run", RunOptions, RUN_FLAGS, names, command)
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=argparse.SUPPRESS,
                        help="hide progress bars")


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
    value = lambda name: default(TrainOptions, name, "retrain" if retrain else "train")  # noqa: E731
    if retrain:
        group.add_argument("--weights", default=str(WEIGHTS_DIR / f"{family}.safetensors"), help="checkpoint to fine-tune")
    group.add_argument("--out", help=f"run directory (default: runs/{family}{'-retrain' if retrain else ''}-<time>)")
    group.add_argument("--epochs", type=int, default=value("epochs"), help="maximum epochs")
    group.add_argument("--lr", type=float, default=value("lr"), help="AdamW learning rate")
    group.add_argument("--weight-decay", type=float, default=value("weight_decay"), help="AdamW weight decay")
    group.add_argument("--patience", type=int, default=value("patience"),
                       help="stop once no trait has improved its validation --select score for this many epochs")
    group.add_argument("--min-crop", type=float, default=value("min_crop"),
                       help="train on a random share in [MIN_CROP, 1] of each clip's frames, drawn anew every epoch "
                            "(augmentation; 1: whole clips)")
    group.add_argument("--lr-patience", type=int, default=value("lr_patience"),
                       help="halve the learning rate after this many epochs in which no trait improved its validation score (0: never)")
    group.add_argument("--max-frames", type=int, default=value("max_frames"), help="training window: longer clips are randomly cropped")
    group.add_argument("--split", metavar="JSON", help="reuse a split manifest (default: make one, seeded, saved as split.json)")
    group.add_argument("--val-fraction", type=float, default=value("val_fraction"), help="share of source videos for validation")
    group.add_argument("--test-fraction", type=float, default=value("test_fraction"), help="share of source videos held out for testing")
    if not retrain:
        group.add_argument("--folds", type=int, metavar="K", help="k-fold cross-validation instead of one split: K runs in "
                           "OUT/fold_1..K, each holding out a fold of whole source videos, scored beside the baselines; "
                           "writes oof_predictions.csv, cv_report.json/.md, folds.json (docs/crossval.md)")
        group.add_argument("--loss", choices=LOSSES, default=value("loss"), help="ordinal (default): CORN, which knows the levels are "
                           "ordered; ce: cross-entropy over the five levels (a retrain keeps its parent's)")
        group.add_argument("--target", choices=TARGETS, default=value("target"), help="levels: one of five levels per "
                           "trait; continuous: one score in [0, 1] per trait, trained on the raw labels (levels are the "
                           "rounded scores)")
    group.add_argument("--select", choices=SELECTIONS, default=value("select"),
                       help="which epoch becomes best.safetensors: lowest validation loss, highest QWK or macro-F1")
    group.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                       help="skip fitting one temperature per trait on the validation split after training")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    group.add_argument("--record-samples", action="store_true", help="write the clip ids each rank trained on (checks DDP sharding)")
    if retrain:
        group.add_argument("--replay-data", nargs="+", default=[], metavar="PATH",
                           help="original training data to mix in against forgetting (only its training split is used)")
        group.add_argument("--replay-fraction", type=float, default=default(RetrainOptions, "replay_fraction"),
                           help="share of each epoch's clips taken from --replay-data")
        group.add_argument("--freeze-encoder", action="store_true", help="train only the model's declared head")


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
    args["out"] = args["out"] or str(PROJECT_ROOT / "runs" / f"{family}{'-retrain' if retrain else ''}-{timestamp()}")
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
    group = parser.add_argument_group("evaluation")
    group.add_argument("--weights", nargs="+", default=str(WEIGHTS_DIR / f"{family}.safetensors"), metavar="PATH",
                       help="checkpoint (.safetensors, run directory or original .pt); or one or more cross-validation run "
                       "directories (train --folds, same folds), whose networks and baselines are reported per fold")
    group.add_argument("--out", help="results directory (default: outputs/<model>-test-<time>)")
    group.add_argument("--split", metavar="JSON", help="split manifest (default: the one stored in the checkpoint)")
    group.add_argument("--subset", choices=SUBSETS, default=default(TestOptions, "subset"),
                       help="which part of the split to evaluate ('all' only for data the model never saw)")
    group.add_argument("--train-data", nargs="+", metavar="PATH", help="training data for the baselines when --data holds none")
    group.add_argument("--bootstrap", dest="n_boot", type=int, default=default(TestOptions, "n_boot"),
                       help="bootstrap resamples for the 95%% CI")
    group.add_argument("--importance", action="store_true", help="also rank AUs per trait by attribution and permutation "
                       "importance (importance.md, importance.png)")
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
    group.add_argument("--weights", default=str(WEIGHTS_DIR / f"{family}.safetensors"),
                       help="checkpoint (.safetensors, run directory or original .pt)")
    group.add_argument("--out", help="per-clip CSV (default: outputs/<model>-deploy-<time>.csv)")
    group.add_argument("--per-frame", metavar="CSV", help="also write the input rows with the five trait columns filled")
    group.add_argument("--force", action="store_true", help="overwrite existing output files")
    group.add_argument("--predict-short", action="store_true", help="predict clips below --min-frames too (status short_predicted)")
    group.add_argument("--shard", metavar="K/N", help="process only every N-th clip starting at K (for N parallel processes)")
    group.add_argument("--merge", nargs="+", metavar="CSV", help="merge per-clip CSVs written with --shard into --out, then exit")
    group.add_argument("--chunk-rows", type=int, default=default(DeployOptions, "chunk_rows"), help="frames read per chunk (bounds memory)")
    group.add_argument("--explain", metavar="DIR", help="also write per-clip explanations (attention, integrated gradients) "
                       "to DIR/explanations.npz, and PNGs of the first clips")
    group.add_argument("--explain-plots", type=int, default=default(DeployOptions, "explain_plots"), metavar="N",
                       help="with --explain: PNGs of the first N explained clips")
    group.add_argument("--runtime", choices=RUNTIMES, default=default(DeployOptions, "runtime"),
                       help="what runs the model: auto = ONNX Runtime on CPU when installed and fp32 without --explain "
                       "(faster, no torch import; the graph is exported once per checkpoint), else torch")
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
