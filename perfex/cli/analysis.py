"""The au_analysis.py command: load clips, per-clip AU statistics, correlate with labels or predictions, write."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..core.paths import DATA_DIR, PROJECT_ROOT
from ..core.schema import TRAITS
from ..data.options import AnalysisConfig, AnalysisOptions, build_config, flatten
from ..tools.analysis.analyse import OUTPUT_FILES, analyse
from .scripts import add_data_flags, add_declared, declared_flags, new_parser, run_command, timestamp


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser(
        "Correlate per-clip AU statistics (mean, std, fraction of active frames) with each trait: Pearson and Spearman "
        "with p-values, Benjamini-Hochberg q-values over the whole table, bootstrap 95%% intervals resampling source "
        "videos. One row per clip, never per frame. Writes a CSV, a Markdown table and a heatmap PNG.",
        "examples:\n  python au_analysis.py\n  python au_analysis.py --data openface_out/ --labels labels.csv --out outputs/au\n"
        "  python au_analysis.py --data data/deploy.csv.gz --predictions traits.csv   (against a deploy's predictions)\n"
        "  python au_analysis.py --data clips.csv --labels labels.csv --targets deception:2,stress:continuous")
    add_data_flags(parser, ["labels", "nan_policy", "min_confidence", "min_frames"], [str(DATA_DIR / "train.csv.gz")], "AU data.")
    group = parser.add_argument_group("analysis")
    add_declared(group, AnalysisOptions, list(declared_flags(AnalysisOptions)), "analyse")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    args["out"] = args["out"] or str(PROJECT_ROOT / "outputs" / f"au-analysis-{timestamp()}")
    config = build_config(AnalysisConfig, **args)
    out = Path(config.analysis.out)
    from ..core.tables import refuse_overwrite
    from ..tools.analysis.outputs import write_outputs

    for name in OUTPUT_FILES:
        refuse_overwrite(out / name, config.analysis.force)
    table, source = analyse(argparse.Namespace(**flatten(config)))
    written = write_outputs(table, out, source)
    names = list(dict.fromkeys(table["trait"]))
    kind = "traits" if tuple(names) == TRAITS else "target(s)"
    print(f"{int(table['n_clips'].iloc[0])} clips, {table['statistic'].nunique()} AU statistics x {len(names)} {kind} "
          f"against {source}; {int((table['spearman_q'] < 0.05).sum())} Spearman correlations with q < .05\n"
          + "\n".join(f"wrote {p}" for p in written))
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Run; bad input ends with one line on stderr and exit status 2."""
    run_command(lambda: run(argv))
