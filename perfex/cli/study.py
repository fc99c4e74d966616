"""``user_study.py``: the select and collect subcommands, with the toolkit's flag vocabulary and error handling."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .scripts import add_data_options
from ..data.readers.formats import titles

from ..tools.study.collect import AGGREGATES, CollectConfig, collect
from ..tools.study.scale import SCALES
from ..tools.study.select import STRATEGIES, UNCERTAINTIES

EPILOG = """examples:
  python user_study.py select --predictions outputs/cnn-deploy.csv --data data/deploy.csv.gz --n 40 \\
      --raters alice,bob,carol --strategy uncertain --per-source 1 --page --out studies/s1
  (raters fill studies/s1/sheet_<rater>.csv, or open studies/s1/rate.html and press Save answers)
  python user_study.py collect --study studies/s1 --out studies/s1/results
  python 1dcnn_retrain.py --data studies/s1/results/retrain.csv.gz"""


def _select_parser(sub) -> None:
    p = sub.add_parser("select", help="pick clips to rate and write the study folder",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Pick N deployed clips for people to rate; write clips.csv, one blank sheet per rater "
                                   "(sheet_<rater>.csv, rater's own shuffled order), study.json and, with --page, rate.html.")
    p.add_argument("--predictions", required=True, metavar="CSV", help="per-clip CSV written by *_deploy.py")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH", help=f"the input the deploy run read ({titles()})")
    p.add_argument("--out", required=True, metavar="STUDY_DIR", help="study folder to write")
    p.add_argument("--raters", required=True, help="rater names (alice,bob,...) or a number (3 -> rater1..rater3)")
    p.add_argument("--n", type=int, default=40, help="clips to rate")
    p.add_argument("--strategy", choices=STRATEGIES, default="uncertain",
                   help="uncertain: what the model knows least (active learning); stratified: spread over predicted levels")
    p.add_argument("--uncertainty", choices=UNCERTAINTIES, default="entropy", help="uncertainty measure, averaged over traits")
    p.add_argument("--per-source", type=int, default=None, metavar="K", help="at most K clips per source video (default: no limit)")
    p.add_argument("--scale", choices=tuple(SCALES), default="grid", help="answers: grid 0,.25,.5,.75,1 or a 1-5 / 1-7 Likert scale")
    p.add_argument("--label-binning", choices=("round", "floor", "quantile"), default="round",
                   help="how collect bins the raters' aggregate onto the 5 levels (recorded in study.json)")
    p.add_argument("--page", action="store_true", help="also write rate.html, a self-contained rating page")
    p.add_argument("--videos", metavar="DIR", help="folder with the clips' videos (by File); shown on the page, else AU plots")
    p.add_argument("--seed", type=int, default=0, help="random seed (choice ties, random strategy, rater orders)")
    add_data_options(p, ["nan_policy", "min_confidence"])
    p.add_argument("--force", action="store_true", help="write into a non-empty --out")


def _collect_parser(sub) -> None:
    p = sub.add_parser("collect", help="validate filled sheets, measure agreement, write the retrain CSV and report",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Read the filled sheets of a study, check them, compute ICC(2,k) and ordinal Krippendorff's "
                                   "alpha per trait, flag raters out of step, aggregate and write retrain.csv.gz for *_retrain.py.")
    p.add_argument("--study", required=True, metavar="STUDY_DIR", help="folder written by 'select'")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for retrain.csv.gz, its .study.json, report.md, figures")
    p.add_argument("--sheets", nargs="+", metavar="CSV", help="filled sheets (default: STUDY_DIR/sheet_*.csv)")
    p.add_argument("--aggregate", choices=AGGREGATES, default="mean", help="how raters' answers are combined per clip")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--min-rater-r", type=float, default=0.3, help="flag raters whose mean r with the others' mean is below this")
    p.add_argument("--drop-flagged", action="store_true", help="leave flagged raters out of the aggregate")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs in --out")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="user_study.py", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                  description="User study step of the research loop: select clips, rate them, collect ratings.")
    sub = top.add_subparsers(dest="command", required=True)
    _select_parser(sub)
    _collect_parser(sub)
    return top


def run(argv: Sequence[str] | None) -> int:
    args = vars(parser().parse_args(argv))
    command = args.pop("command")
    if command == "select":
        from ..tools.study.build import SelectConfig, create_study

        manifest = create_study(SelectConfig(**args))
        extra = ", rate.html" if manifest.get("page") else ""
        print(f"{manifest['study_id']}: {len(manifest['clip_ids'])} clips, {len(manifest['raters'])} raters -> "
              f"{args['out']}/clips.csv, sheet_<rater>.csv{extra}, study.json")
        return 0
    summary = collect(CollectConfig(**args))
    for trait, a in summary["agreement"].items():
        print(f"{trait}: ICC(2,k) {a['icc2k']:.3f}, ordinal alpha {a['alpha_ordinal']:.3f}")
    flagged = [r for r, c in summary["rater_checks"].items() if c["flagged"]]
    print(f"flagged raters: {', '.join(flagged) or 'none'}; wrote {args['out']}/retrain.csv.gz, retrain.study.json, report.md")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Run; bad input ends with one line on stderr and exit status 2."""
    from .scripts import run_command

    run_command(lambda: run(argv))
