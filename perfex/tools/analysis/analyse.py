"""The AU analysis behind au_analysis.py: load clips, per-clip AU statistics, correlate with labels or predictions
(the command itself, its parser and outputs: perfex.cli.analysis)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ...core.errors import PerfexError
from ...core.schema import AU_INTENSITY_COLUMNS, AU_PRESENCE_COLUMNS, ID_COLUMN, Target, Targets

if TYPE_CHECKING:  # the heavy modules load after argument parsing, so --help and usage errors answer at once
    import pandas as pd

    from ...core.clips import ClipSet
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


def _load(args: argparse.Namespace, targets: Targets | None) -> tuple[ClipSet, dict[str, str]]:
    """The clips of --data with their AU presence columns; labelled for ``targets`` (None: predictions, no labels)."""
    import numpy as np

    from ...data.readers import expand_inputs, load_clips

    paths = expand_inputs(args.data)
    presence = _presence_columns(paths)
    clips = load_clips(paths, labels=args.labels, features=[*AU_INTENSITY_COLUMNS, *presence.values()],
                       nan_policy=args.nan_policy, min_confidence=args.min_confidence, label_binning="round",
                       require_labels=targets is not None, targets=targets)
    keep = np.flatnonzero(clips.lengths >= max(args.min_frames, 1))
    if len(keep) < len(clips):
        print(f"left out {len(clips) - len(keep)} clip(s) with fewer than {args.min_frames} frames", file=sys.stderr)
    return clips.subset(keep), presence


def prediction_column(target: Target, values: str) -> str:
    """A deploy CSV's column of ``target``: its value (a level's grid value, a continuous value), or with ``score`` a
    level target's expected score ``NAME_score`` (a continuous target has only its value)."""
    return f"{target.name}_score" if values == "score" and not target.continuous else target.name


def _read_predictions(path: str, values: str, spec: str | None) -> tuple[pd.DataFrame, Targets]:
    """The predicted values of a deploy CSV, indexed by clip ID (as text), a column per target (named by it): the
    CSV's own targets (the Big Five for a CSV without the deploy's identity columns), or those ``spec`` picks."""
    import pandas as pd

    from ...core.schema import chosen_targets
    from ...infer.clip_rows import deploy_targets

    try:
        frame = pd.read_csv(path, dtype={ID_COLUMN: str})
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0]
        raise PerfexError(f"--predictions {path} could not be read ({reason}); pass a deploy per-clip CSV") from None
    targets = chosen_targets(spec, deploy_targets(frame.columns), f"--predictions {path}")
    columns = [prediction_column(t, values) for t in targets]
    missing = [c for c in [ID_COLUMN, *columns] if c not in frame.columns]
    if missing:
        raise PerfexError(f"--predictions {path} lacks the column(s) {', '.join(missing)}; pass the per-clip CSV a deploy "
                          "wrote (for a model of other targets than the Big Five, name them with --targets)")
    table = frame.drop_duplicates(ID_COLUMN).set_index(ID_COLUMN)[columns]
    table.columns = list(targets.names)
    return table, targets


def analyse(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    """The correlation table and a description of what the targets' values came from."""
    import numpy as np
    import pandas as pd

    from ...core.schema import parse_targets
    from ...data.splits import group_keys
    from .clip_stats import clip_au_statistics
    from .correlate import correlation_table

    spec = getattr(args, "targets", None)
    if args.predictions:
        predictions, _ = _read_predictions(args.predictions, args.prediction_values, spec)
        clips, presence = _load(args, None)
        traits = predictions.reindex(clips.ids.astype(str))
        source = f"predicted {'levels' if args.prediction_values == 'level' else 'scores'} ({Path(args.predictions).name})"
    else:
        targets = parse_targets(spec)
        clips, presence = _load(args, targets)
        traits, source = pd.DataFrame(clips.scores, columns=list(targets.names)), "labels"
    known = np.flatnonzero(traits.notna().all(axis=1).to_numpy())
    if args.predictions and len(known) == 0:
        raise PerfexError(f"no clip of --data has a prediction in {args.predictions}; pass the deploy CSV made from this --data")
    clips = clips.subset(known)
    statistics = clip_au_statistics(clips, list(AU_INTENSITY_COLUMNS), presence)
    table = correlation_table(statistics, traits.iloc[known].reset_index(drop=True), group_keys(clips), args.n_boot, args.seed)
    return table, source
