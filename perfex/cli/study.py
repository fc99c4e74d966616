"""``user_study.py``: the select and collect subcommands, with the toolkit's flag vocabulary and error handling."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..tools.study.collect import collect
from ..tools.study.options import CollectConfig, SelectConfig
from .scripts import add_data_options, add_declared, declared_flags

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
    names = list(declared_flags(SelectConfig))
    first, last = names.index("nan_policy"), names.index("min_confidence") + 1
    add_declared(p, SelectConfig, names[:first])
    add_data_options(p, names[first:last])  # DataOptions' own declarations, in a "data" group
    add_declared(p, SelectConfig, names[last:])


def _collect_parser(sub) -> None:
    p = sub.add_parser("collect", help="validate filled sheets, measure agreement, write the retrain CSV and report",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Read the filled sheets of a study, check them, compute ICC(2,k) and ordinal Krippendorff's "
                                   "alpha per trait, flag raters out of step, aggregate and write retrain.csv.gz for *_retrain.py.")
    add_declared(p, CollectConfig, list(declared_flags(CollectConfig)))


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
        from ..tools.study.build import create_study

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
