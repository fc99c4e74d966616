"""The au_analysis.py command: load clips, per-clip AU statistics, correlate with labels or predictions, write."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli import add_data_flags, new_parser, timestamp
from ..paths import DATA_DIR, PROJECT_ROOT
from ..errors import PerfexError
from ..schema import AU_INTENSITY_COLUMNS, AU_PRESENCE_COLUMNS, ID_COLUMN, TRAITS

if TYPE_CHECKING:  # the heavy modules load after argument parsing, so --help and usage errors answer at once
    import pandas as pd

    from ..clips import ClipSet

PREDICTION_VALUES = {"level": list(TRAITS), "score": [f"{t}_score" for t in TRAITS]}
OUTPUT_FILES = ("au_trait_correlations.csv", "au_trait_correlations.md", "au_trait_correlations.png")


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


def _columns(path: Path) -> set[str]:
    """Stripped column names of a CSV(.gz) file."""
    import pyarrow.csv as pacsv

    try:
        return {name.strip() for name in pacsv.open_csv(path).schema.names}
    except Exception as err:  # any unreadable file: the loader below names the problem precisely
        raise PerfexError(f"{path} could not be read as CSV ({str(err).splitlines()[0] if str(err) else err})") from None


def _presence_columns(paths: list[Path]) -> dict[str, str]:
    """Intensity column -> presence column, for AUs whose AUxx_c column every input file has."""
    shared = set.intersection(*(_columns(p) for p in paths))
    pairs = {c: c.replace("_r", "_c") for c in AU_INTENSITY_COLUMNS}
    return {r: c for r, c in pairs.items() if c in shared and c in AU_PRESENCE_COLUMNS}


def _load(args: argparse.Namespace) -> tuple[ClipSet, dict[str, str]]:
    import numpy as np

    from ..readers import expand_inputs, load_clips

    paths = expand_inputs(args.data)
    presence = _presence_columns(paths)
    clips = load_clips(paths, labels=args.labels, features=[*AU_INTENSITY_COLUMNS, *presence.values()],
                       nan_policy=args.nan_policy, min_confidence=args.min_confidence, label_binning="round",
                       require_labels=args.predictions is None)
    keep = np.flatnonzero(clips.lengths >= max(args.min_frames, 1))
    if len(keep) < len(clips):
        print(f"left out {len(clips) - len(keep)} clip(s) with fewer than {args.min_frames} frames", file=sys.stderr)
    return clips.subset(keep), presence


def _read_predictions(path: str, values: str) -> pd.DataFrame:
    """The predicted values of a deploy CSV, indexed by clip ID (as text), columns named like the traits."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={ID_COLUMN: str})
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0]
        raise PerfexError(f"--predictions {path} could not be read ({reason}); pass a deploy per-clip CSV") from None
    columns = PREDICTION_VALUES[values]
    missing = [c for c in [ID_COLUMN, *columns] if c not in frame.columns]
    if missing:
        raise PerfexError(f"--predictions {path} lacks the column(s) {', '.join(missing)}; pass the per-clip CSV a deploy wrote")
    table = frame.drop_duplicates(ID_COLUMN).set_index(ID_COLUMN)[columns]
    table.columns = list(TRAITS)
    return table


def analyse(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """The correlation table and a description of what the traits came from."""
    import numpy as np
    import pandas as pd

    from ..splits import group_keys
    from .clip_stats import clip_au_statistics
    from .correlate import correlation_table

    predictions = _read_predictions(args.predictions, args.prediction_values) if args.predictions else None
    clips, presence = _load(args)
    if predictions is not None:
        traits = predictions.reindex(clips.ids.astype(str))
        source = f"predicted {'levels' if args.prediction_values == 'level' else 'scores'} ({Path(args.predictions).name})"
    else:
        traits, source = pd.DataFrame(clips.scores, columns=list(TRAITS)), "labels"
    known = np.flatnonzero(traits.notna().all(axis=1).to_numpy())
    if args.predictions and len(known) == 0:
        raise PerfexError(f"no clip of --data has a prediction in {args.predictions}; pass the deploy CSV made from this --data")
    clips = clips.subset(known)
    statistics = clip_au_statistics(clips, list(AU_INTENSITY_COLUMNS), presence)
    table = correlation_table(statistics, traits.iloc[known].reset_index(drop=True), group_keys(clips), args.n_boot, args.seed)
    return table, source


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out or PROJECT_ROOT / "outputs" / f"au-analysis-{timestamp()}")
    from ..tables import refuse_overwrite
    from .outputs import write_outputs

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
    from ..cli import run_command

    run_command(lambda: run(argv))
