"""Command-line front ends: every top-level script is one call into this module."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import PerfexError

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
WEIGHTS = REPO / "weights"
MODEL_TITLES = {"cnn": "multi-scale 1D-CNN", "attn": "hybrid attention network (LSTM + attention | FCN + squeeze-excite)"}
SCRIPT_PREFIX = {"cnn": "1dcnn", "attn": "attn"}


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def _parser(description: str, epilog: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_data_flags(parser: argparse.ArgumentParser, data_default: list[str] | None, data_help: str) -> None:
    group = parser.add_argument_group("data")
    group.add_argument("--data", nargs="+", default=data_default, metavar="PATH",
                       help=f"{data_help} PerFeX long CSV(s) (.csv/.csv.gz) and/or OpenFace CSV files or directories")
    group.add_argument("--labels", metavar="FILE", help="labels for OpenFace inputs: CSV with File + five traits, the ChaLearn "
                       "2016 CSV (VideoName,ValueExtraversion,...) or a ChaLearn annotation_*.pkl")
    group.add_argument("--nan", dest="nan_policy", choices=("error", "drop-frames", "interpolate"), default="error",
                       help="what to do with NaN/inf AU values (default: error)")
    group.add_argument("--min-confidence", type=float, default=0.8,
                       help="OpenFace inputs: drop frames with success 0 or confidence below this (default: 0.8)")
    group.add_argument("--min-frames", type=int, default=40,
                       help="clips with fewer frames are skipped and reported (the original kept > 40; default: 40)")


def _add_label_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--label-binning", choices=("round", "floor", "quantile"),
                        help="how to turn off-grid trait scores (e.g. raw First Impressions values) into 5 levels; "
                             "on-grid values (0, .25, .5, .75, 1) need none")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="cache parsed CSVs here (keyed by file hash) so the next load is much faster")


def _add_run_flags(parser: argparse.ArgumentParser, batch_size: int) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--batch-size", type=int, default=batch_size, help=f"clips per batch (default: {batch_size})")
    group.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    group.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to run (default: auto)")
    group.add_argument("--workers", type=int, default=0, help="data-loading worker processes (default: 0)")
    group.add_argument("--amp", action="store_true", help="bfloat16 autocast (useful on recent GPUs)")
    group.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")


def train_parser(family: str, retrain: bool) -> argparse.ArgumentParser:
    script = f"{SCRIPT_PREFIX[family]}_{'retrain' if retrain else 'train'}.py"
    if retrain:
        description = (f"Fine-tune a trained {MODEL_TITLES[family]} on user-study ratings (same schema as the training "
                       "data). The new checkpoint records its parent and iteration.")
        epilog = (f"examples:\n  python {script}\n  python {script} --weights runs/{family}/best.safetensors "
                  f"--data study.csv --replay-data data/train.csv.gz --replay-fraction 0.3\n"
                  f"  torchrun --nproc_per_node=2 {script} ...   (same flags, DistributedDataParallel)")
        data_default, out_help = [str(DATA / "user_study.csv.gz")], "runs/<model>-retrain-<time>"
    else:
        description = (f"Train the {MODEL_TITLES[family]} on PerFeX AU time series: batched, validated every epoch on "
                       "source-video-disjoint clips, best/last checkpoints, early stopping.")
        epilog = (f"examples:\n  python {script}\n  python {script} --data my_perfex.csv --out runs/mine --epochs 100\n"
                  f"  python {script} --data openface_dir/ --labels annotation_training.pkl --label-binning round\n"
                  f"  torchrun --nproc_per_node=4 {script} --data big.csv   (DistributedDataParallel)")
        data_default, out_help = [str(DATA / "train.csv.gz")], "runs/<model>-<time>"
    parser = _parser(description, epilog)
    _add_data_flags(parser, data_default, f"training data (default: {data_default[0]}).")
    _add_label_flags(parser)
    group = parser.add_argument_group("training")
    group.add_argument("--weights", default=str(WEIGHTS / f"{family}.safetensors") if retrain else None,
                       help="checkpoint to fine-tune" + (f" (default: weights/{family}.safetensors)" if retrain else
                                                         " (train starts from scratch; use the retrain script to fine-tune)"))
    group.add_argument("--out", help=f"run directory (default: {out_help})")
    group.add_argument("--epochs", type=int, default=30 if retrain else 60, help="maximum epochs (default: %(default)s)")
    group.add_argument("--lr", type=float, default=3e-4 if retrain else 1e-3, help="AdamW learning rate (default: %(default)s)")
    group.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default: %(default)s)")
    group.add_argument("--patience", type=int, default=15, help="stop after this many epochs without a better validation macro-F1")
    group.add_argument("--max-frames", type=int, default=700, help="training window: longer clips are randomly cropped (default: 700)")
    group.add_argument("--features", default="au", help="input columns: 'au' (17 AU intensities), 'au,gaze,pose' (OpenFace) or names")
    group.add_argument("--split", metavar="JSON", help="reuse a split manifest (default: make one, seeded, saved as split.json)")
    group.add_argument("--val-fraction", type=float, default=0.15, help="share of source videos for validation (default: 0.15)")
    group.add_argument("--test-fraction", type=float, default=0.15, help="share of source videos held out for testing (default: 0.15)")
    group.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    group.add_argument("--record-samples", action="store_true", help="write the clip ids each rank trained on (checks DDP sharding)")
    if retrain:
        group.add_argument("--replay-data", nargs="+", default=[], metavar="PATH",
                           help="original training data to mix in against forgetting (only its training split is used)")
        group.add_argument("--replay-fraction", type=float, default=0.0, help="share of each epoch's clips taken from --replay-data")
        group.add_argument("--freeze-encoder", action="store_true", help="train only the classification head")
    _add_run_flags(parser, 32)
    return parser


def run_train(family: str, retrain: bool, argv: Sequence[str] | None) -> int:
    from .train import TrainConfig, fit

    args = vars(train_parser(family, retrain).parse_args(argv))
    args["out"] = args["out"] or str(REPO / "runs" / f"{family}{'-retrain' if retrain else ''}-{_stamp()}")
    fit(TrainConfig(model=family, **args), family, retrain=retrain)
    return 0


def test_parser(family: str) -> argparse.ArgumentParser:
    script = f"{SCRIPT_PREFIX[family]}_test.py"
    parser = _parser(
        f"Evaluate a {MODEL_TITLES[family]} checkpoint on held-out clips beside three baselines (majority class, "
        "train-mean predictor, logistic regression on per-clip AU mean/std): accuracy, macro P/R/F1, ROC AUC, "
        "MAE, Pearson r, bootstrap 95% CI, confusion matrices.",
        f"examples:\n  python {script}\n  python {script} --weights runs/x/best.safetensors\n"
        f"  python {script} --weights cnn_180.pt --data perfex_test.csv --subset all --train-data perfex_train.csv")
    _add_data_flags(parser, None, "labelled data (default: the data recorded in the checkpoint).")
    _add_label_flags(parser)
    group = parser.add_argument_group("evaluation")
    group.add_argument("--weights", default=str(WEIGHTS / f"{family}.safetensors"),
                       help=f"checkpoint (.safetensors, run directory or original .pt) (default: weights/{family}.safetensors)")
    group.add_argument("--out", help="results directory (default: outputs/<model>-test-<time>)")
    group.add_argument("--split", metavar="JSON", help="split manifest (default: the one stored in the checkpoint)")
    group.add_argument("--subset", choices=("test", "val", "train", "all"), default="test",
                       help="which part of the split to evaluate (default: test; 'all' only for data the model never saw)")
    group.add_argument("--train-data", nargs="+", metavar="PATH", help="training data for the baselines when --data holds none")
    group.add_argument("--bootstrap", dest="n_boot", type=int, default=1000, help="bootstrap resamples for the 95%% CI")
    _add_run_flags(parser, 64)
    return parser


def run_test(family: str, argv: Sequence[str] | None) -> int:
    from .report import EvalConfig, run_test as evaluate

    args = vars(test_parser(family).parse_args(argv))
    args["out"] = args["out"] or str(REPO / "outputs" / f"{family}-test-{_stamp()}")
    args.pop("workers")
    results = evaluate(EvalConfig(**args), family)
    print(f"evaluated on {results['evaluated_on']}\n\n{results['markdown']}\n\nwrote {args['out']}/results.json, results.md, "
          "predictions.csv, confusion_matrices.png")
    return 0


def deploy_parser(family: str) -> argparse.ArgumentParser:
    script = f"{SCRIPT_PREFIX[family]}_deploy.py"
    parser = _parser(
        f"Predict Big Five trait levels with a {MODEL_TITLES[family]} for every clip of PerFeX or OpenFace inputs. "
        "Every input clip gets a row (with a status); nothing is dropped.",
        f"examples:\n  python {script}\n  python {script} --data openface_out/ --out traits.csv\n"
        f"  python {script} --weights attn_180.pt --data clips.csv --per-frame rows.csv   (original weights)\n"
        f"  python {script} --data big.csv --shard 0/2 --out part0.csv; ... --shard 1/2 --out part1.csv\n"
        f"  python {script} --merge part0.csv part1.csv --out traits.csv\n\n"
        "statuses: ok, windowed (long clip: windows averaged), too_short, short_predicted, no_frames")
    _add_data_flags(parser, [str(DATA / "deploy.csv.gz")], "input (default: data/deploy.csv.gz).")
    group = parser.add_argument_group("output")
    group.add_argument("--weights", default=str(WEIGHTS / f"{family}.safetensors"),
                       help=f"checkpoint (.safetensors, run directory or original .pt) (default: weights/{family}.safetensors)")
    group.add_argument("--out", help="per-clip CSV (default: outputs/<model>-deploy-<time>.csv)")
    group.add_argument("--per-frame", metavar="CSV", help="also write the input rows with the five trait columns filled")
    group.add_argument("--force", action="store_true", help="overwrite existing output files")
    group.add_argument("--predict-short", action="store_true", help="predict clips below --min-frames too (status short_predicted)")
    group.add_argument("--shard", metavar="K/N", help="process only every N-th clip starting at K (for N parallel processes)")
    group.add_argument("--merge", nargs="+", metavar="CSV", help="merge per-clip CSVs written with --shard into --out, then exit")
    group.add_argument("--chunk-rows", type=int, default=1_000_000, help="frames read per chunk (bounds memory; default 1,000,000)")
    _add_run_flags(parser, 64)
    return parser


def run_deploy(family: str, argv: Sequence[str] | None) -> int:
    from .deploy import DeployConfig, deploy, merge_shards

    args = vars(deploy_parser(family).parse_args(argv))
    if args["merge"]:
        if not args["out"]:
            raise PerfexError("--merge needs --out: the per-clip CSV to write")
        summary = merge_shards(args["merge"], args["out"], force=args["force"])
        print(f"merged {summary['shards']} shards: {summary['clips_written']} clips -> {summary['out']}")
        return 0
    args["out"] = args["out"] or str(REPO / "outputs" / f"{family}-deploy-{_stamp()}.csv")
    for unused in ("merge", "seed", "workers", "labels"):
        args.pop(unused)
    summary = deploy(DeployConfig(**args), family)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary["status_counts"].items()))
    print(f"{summary['clips_written']} of {summary['clips_in_input']} clips written ({statuses}) -> {summary['out']}")
    if summary.get("per_frame"):
        print(f"per-frame rows -> {summary['per_frame']}")
    return 0


def main(command: str, model: str | None = None, argv: Sequence[str] | None = None) -> None:
    """Entry point of every script: run the command; bad input ends with one line on stderr and exit status 2."""
    actions: dict[str, Callable[[], int]] = {
        "train": lambda: run_train(model, False, argv),
        "retrain": lambda: run_train(model, True, argv),
        "test": lambda: run_test(model, argv),
        "deploy": lambda: run_deploy(model, argv),
        "augment": lambda: run_augment(argv),
    }
    try:
        code = actions[command]()
    except PerfexError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.stdout.flush()
    sys.stderr.flush()
    # Leave without running C++ static destructors: with torch and pyarrow's thread pools both loaded, the normal
    # interpreter shutdown can abort ("terminate called without an active exception", status 134) after the work
    # is done. Every output file is closed (and atomically renamed) by now.
    os._exit(code)


def run_augment(argv: Sequence[str] | None) -> int:
    from .augment import AugmentConfig, augment_files
    from .io import expand_inputs
    from .tables import refuse_overwrite

    parser = _parser(
        "Augment PerFeX clips as the original did (every 2nd frame; 5-frame shift with edge fill; non-overlapping "
        "100-frame windows). Output = input clips + copies with new IDs and provenance columns source_id, augmentation, "
        "so splits keep every copy with its source video.",
        "examples:\n  python data_augmentation.py\n  python data_augmentation.py --data train.csv --out train_aug.csv.gz "
        "--window-frames 150 --no-shift")
    parser.add_argument("--data", nargs="+", default=[str(DATA / "train.csv.gz")], metavar="PATH",
                        help="PerFeX long CSV(s) to augment (default: data/train.csv.gz)")
    parser.add_argument("--out", help="output CSV or CSV.GZ (default: outputs/<first input>_augmented.csv.gz)")
    parser.add_argument("--subsample-step", type=int, default=2, help="keep every n-th frame (default: 2; 0 disables)")
    parser.add_argument("--shift-frames", type=int, default=5, help="delay by n frames, edge-filled (default: 5; 0 disables)")
    parser.add_argument("--window-frames", type=int, default=100, help="non-overlapping windows of n frames (default: 100; 0 disables)")
    parser.add_argument("--no-subsample", action="store_true", help="disable the every-n-th-frame copy")
    parser.add_argument("--no-shift", action="store_true", help="disable the shifted copy")
    parser.add_argument("--no-windows", action="store_true", help="disable the window copies")
    parser.add_argument("--no-original", action="store_true", help="write only the augmented copies")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    inputs = expand_inputs(args.data)
    out = Path(args.out or REPO / "outputs" / f"{inputs[0].name.split('.')[0]}_augmented.csv.gz")
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
