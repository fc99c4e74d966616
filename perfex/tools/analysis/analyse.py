"""The AU analysis behind au_analysis.py: load clips, per-clip AU statistics, correlate with labels or predictions
(the command itself, its parser and outputs: perfex.cli.analysis)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.errors import PerfexError
from ...core.schema import AU_INTENSITY_COLUMNS, AU_PRESENCE_COLUMNS, ID_COLUMN, TRAITS

if TYPE_CHECKING:  # the heavy modules load after argument parsing, so --help and usage errors answer at once
    import pandas as pd

    from ...core.clips import ClipSet

PREDICTION_VALUES = {"level": list(TRAITS), "score": [f"{t}_score" for t in TRAITS]}
OUTPUT_FILES = ("au_trait_correlations.csv", "au_trait_correlations.md", "au_trait_correlations.png")


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

    from ...data.readers import expand_inputs, load_clips

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

    from ...data.splits import group_keys
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
