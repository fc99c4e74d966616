"""The options of ``user_study.py select`` and ``collect``, each declared once with ``option(...)``: the dataclasses the
Python API takes and the flags the command generates from them."""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field
from typing import Any

from ...data.options import LABEL_BINNINGS, DataOptions, at_least, check_options, option
from ...data.readers.formats import titles
from .scale import SCALES
from .select import STRATEGIES, UNCERTAINTIES

AGGREGATES = ("mean", "median")


def required(help: str, **argparse_keywords: Any) -> Any:
    """An option without a default: the command line asks for it."""
    return option(MISSING, help, parse_default=None, required=True, **argparse_keywords)


def same_as(options: type, name: str) -> Any:
    """A field declared like ``options``' field ``name`` (same default, flag, help, choices and range)."""
    declared: Field = options.__dataclass_fields__[name]
    return field(default=declared.default, metadata=declared.metadata)


@dataclass
class SelectConfig:
    """Options of one ``user_study.py select`` run (fields in the order of its flags)."""

    predictions: str = required("per-clip CSV written by *_deploy.py", metavar="CSV")
    data: list[str] = required(f"the input the deploy run read ({titles()})", nargs="+", metavar="PATH")
    out: str = required("study folder to write", metavar="STUDY_DIR")
    raters: str = required("rater names (alice,bob,...) or a number (3 -> rater1..rater3)")
    n: int = option(40, "clips to rate", check=at_least(1), type=int)
    strategy: str = option("uncertain", "uncertain: what the model knows least (active learning); stratified: spread "
                           "over predicted levels", choices=STRATEGIES)
    uncertainty: str = option("entropy", "uncertainty measure, averaged over traits", choices=UNCERTAINTIES)
    per_source: int | None = option(None, "at most K clips per source video (default: no limit)", type=int, metavar="K")
    scale: str = option("grid", "answers: grid 0,.25,.5,.75,1 or a 1-5 / 1-7 Likert scale", choices=tuple(SCALES))
    label_binning: str = option("round", "how collect bins the raters' aggregate onto the 5 levels (recorded in "
                                "study.json)", choices=LABEL_BINNINGS)
    page: bool = option(False, "also write rate.html, a self-contained rating page", action="store_true")
    videos: str | None = option(None, "folder with the clips' videos (by File); shown on the page, else AU plots",
                                metavar="DIR")
    seed: int = option(0, "random seed (choice ties, random strategy, rater orders)", type=int)
    nan_policy: str = same_as(DataOptions, "nan_policy")
    min_confidence: float = same_as(DataOptions, "min_confidence")
    force: bool = option(False, "write into a non-empty --out", action="store_true")

    def __post_init__(self) -> None:
        check_options(self)


@dataclass
class CollectConfig:
    """Options of one ``user_study.py collect`` run."""

    study: str = required("folder written by 'select'", metavar="STUDY_DIR")
    out: str = required("folder for retrain.csv.gz, its .study.json, report.md, figures", metavar="DIR")
    sheets: list[str] | None = option(None, "filled sheets (default: STUDY_DIR/sheet_*.csv)", nargs="+", metavar="CSV")
    aggregate: str = option("mean", "how raters' answers are combined per clip", choices=AGGREGATES)
    bootstrap: int = option(1000, "bootstrap resamples for the 95%% intervals", type=int)
    min_rater_r: float = option(0.3, "flag raters whose mean r with the others' mean is below this", type=float)
    drop_flagged: bool = option(False, "leave flagged raters out of the aggregate", action="store_true")
    seed: int = option(0, "bootstrap seed", type=int)
    force: bool = option(False, "overwrite existing outputs in --out", action="store_true")

    def __post_init__(self) -> None:
        check_options(self)
