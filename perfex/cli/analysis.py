"""The au_analysis.py command: load clips, per-clip AU statistics, correlate with labels or predictions, write."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core.paths import DATA_DIR, PROJECT_ROOT
from ..core.schema import TRAITS
from ..tools.analysis.analyse import OUTPUT_FILES, PREDICTION_VALUES, analyse
from .scripts import add_data_flags, new_parser, run_command, timestamp


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "Correlate per-clip AU statistics (mean, std, fraction of active frames) with each trait: Pearson and Spearman "
        "with p-values, Benjamini-Hochberg q-values over the whole table, bootstrap 95%% intervals resampling source "
        "videos. One row per clip, never per frame. Writes a CSV, a Markdown table and a heatmap PNG.",
        "examples:\n  python au_analysis.py\n  python au_analysis.py --data openface_out/ --labels labels.csv --out outputs/au\n"
        "  python au_analysis.py --data data/deploy.csv.gz --predictions traits.csv   (against a deploy's predictions)")
    add_data_flags(parser, ["labels", "nan_policy", "min_confidence", "min_frames"], [str(DATA_DIR / "train.csv.gz")], "AU data.")
    group = parser.add_argument_group("analysis")
    group.add_argument("--predictions", metavar="CSV", help="a deploy per-clip CSV: correlate with its predictions "
                       "instead of labels (clips are matched by ID; unpredicted clips are left out)")
    group.add_argument("--prediction-values", choices=tuple(PREDICTION_VALUES), default="level",
                       help="with --predictions: the predicted level columns or the expected <trait>_score")
    group.add_argument("--out", help="output directory (default: outputs/au-analysis-<time>)")
    group.add_argument("--force", action="store_true", help="overwrite existing output files")
    group.add_argument("--bootstrap", dest="n_boot", type=int, default=1000, help="bootstrap resamples")
    group.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out or PROJECT_ROOT / "outputs" / f"au-analysis-{timestamp()}")
    from ..core.tables import refuse_overwrite
    from ..tools.analysis.outputs import write_outputs

    for name in OUTPUT_FILES:
        refuse_overwrite(out / name, args.force)
    table, source = analyse(args)
    written = write_outputs(table, out, source)
    print(f"{int(table['n_clips'].iloc[0])} clips, {table['statistic'].nunique()} AU statistics x {len(TRAITS)} traits "
          f"against {source}; {int((table['spearman_q'] < 0.05).sum())} Spearman correlations with q < .05\n"
          + "\n".join(f"wrote {p}" for p in written))
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Run; bad input ends with one line on stderr and exit status 2."""
    run_command(lambda: run(argv))
