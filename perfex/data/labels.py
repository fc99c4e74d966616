"""Trait labels: read labels tables (CSV or ChaLearn pickle) and turn trait scores into the 5 levels."""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import PerfexError
from ..core.schema import LEVEL_GRID, N_LEVELS, TRAIT_ALIASES, TRAITS

if TYPE_CHECKING:  # pandas is imported where labels are read, so deploy never pays for it
    import pandas as pd

BINNINGS = ("grid", "round", "floor", "quantile")
GRID_TOLERANCE = 1e-6
QUANTILES = (0.2, 0.4, 0.6, 0.8)
BINNING_HINT = "pass --label-binning round|floor|quantile"

# Spellings of each trait seen in labels files: PerFeX, ChaLearn, and the 2016 CSV ('ValueNeurotisicm' included).
_TRAIT_SPELLINGS = {name: name for name in TRAITS} | TRAIT_ALIASES | {"neurotisicm": "neuroticism"}
_VIDEO_NAME_COLUMNS = ("File", "VideoName")
_ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}
_VIDEO_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{1,4}$")


def scores_to_levels(scores: np.ndarray, binning: str | None, clip_ids: np.ndarray) -> tuple[np.ndarray, str]:
    """Trait scores [N, 5] in [0, 1] -> (levels [N, 5] int64 in 0..4, binning used).

    ``binning`` is None/'grid' (values must sit on 0, .25, .5, .75, 1), 'round', 'floor' (the original's
    ``int(x * 4)``), 'quantile' (per-trait quintiles of these scores) or a recorded 'quantile:...' string to reuse.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, len(TRAITS))
    _check_scores(scores, clip_ids)
    top = N_LEVELS - 1
    if binning in (None, "grid"):
        levels = np.rint(scores * top)
        off_grid = np.abs(scores * top - levels) > GRID_TOLERANCE * top
        if off_grid.any():
            row, trait = np.argwhere(off_grid)[0]
            raise PerfexError(
                f"clip {clip_ids[row]}: {TRAITS[trait]} = {scores[row, trait]:.6g} is not on the level grid "
                f"{', '.join(f'{v:g}' for v in LEVEL_GRID)} ({int(off_grid.any(axis=1).sum())} clip(s) are off the grid); "
                f"{BINNING_HINT} to bin continuous scores"
            )
        return levels.astype(np.int64), "grid"
    if binning == "round":
        return np.minimum(np.floor(scores * top + 0.5), top).astype(np.int64), "round"
    if binning == "floor":
        return np.minimum(np.floor(scores * top), top).astype(np.int64), "floor"
    if binning == "quantile" or (binning or "").startswith("quantile:"):
        edges = _quantile_edges(scores) if binning == "quantile" else parse_quantile_edges(binning)
        levels = np.stack([np.searchsorted(edges[t], scores[:, t], side="left") for t in range(len(TRAITS))], axis=1)
        return levels.astype(np.int64), format_quantile_edges(edges)
    raise PerfexError(f"unknown label binning {binning!r}; use one of {', '.join(BINNINGS)}")


def _check_scores(scores: np.ndarray, clip_ids: Sequence[Hashable]) -> None:
    """Every score present and within [0, 1], else name the first offending clip and trait."""
    missing = np.isnan(scores)
    if missing.any():
        row, trait = np.argwhere(missing)[0]
        raise PerfexError(
            f"clip {clip_ids[row]}: {TRAITS[trait]} is missing while other traits are given; "
            "a labelled clip needs all five traits (fill the missing value or leave all five empty)"
        )
    outside = (scores < 0) | (scores > 1)
    if outside.any():
        row, trait = np.argwhere(outside)[0]
        raise PerfexError(
            f"clip {clip_ids[row]}: {TRAITS[trait]} = {scores[row, trait]:.6g} is outside [0, 1]; "
            "trait scores must lie between 0 and 1 (rescale the labels)"
        )


def _quantile_edges(scores: np.ndarray) -> np.ndarray:
    """Per-trait quintile edges [5, 4], rounded to the precision they are recorded with so they reproduce exactly."""
    if len(scores) == 0:
        raise PerfexError("--label-binning quantile needs labelled clips to compute the quintile edges")
    edges = np.quantile(scores, QUANTILES, axis=0).T
    return np.array([[float(f"{e:.6g}") for e in row] for row in edges])


def format_quantile_edges(edges: np.ndarray) -> str:
    """'quantile:extroversion=0.41,0.47,0.52,0.58;neuroticism=...' (reusable as a binning)."""
    parts = [f"{trait}={','.join(f'{e:.6g}' for e in row)}" for trait, row in zip(TRAITS, edges)]
    return "quantile:" + ";".join(parts)


def parse_quantile_edges(binning: str) -> np.ndarray:
    """The [5, 4] edges of a recorded 'quantile:...' binning string."""
    try:
        fields = dict(part.split("=", 1) for part in binning.removeprefix("quantile:").split(";"))
        edges = np.array([[float(v) for v in fields[trait].split(",")] for trait in TRAITS])
    except (ValueError, KeyError):
        edges = np.zeros((0, 0))
    if edges.shape != (len(TRAITS), len(QUANTILES)) or (np.diff(edges, axis=1) < 0).any():
        raise PerfexError(
            f"label binning {binning!r} is not a recorded quantile binning "
            "('quantile:extroversion=e1,e2,e3,e4;neuroticism=...;...', five traits, four rising edges each)"
        )
    return edges


def strip_video_extension(name: str) -> str:
    """'XQ3do4LDFv8.000.mp4' -> 'XQ3do4LDFv8.000' (a numeric segment suffix like '.000' is kept)."""
    return _VIDEO_EXTENSION.sub("", name)


def read_labels(path: str | Path) -> pd.DataFrame:
    """Labels table (CSV with File/VideoName + traits, or ChaLearn annotation pickle) indexed by video name."""
    path = Path(path)
    if not path.is_file():
        raise PerfexError(f"labels file {path} does not exist; check the path given to --labels")
    if path.suffix == ".pkl":
        table = _labels_from_annotation(load_pickle_restricted(path), path)
    elif path.name.endswith((".csv", ".csv.gz")):
        table = _labels_from_csv(path)
    else:
        raise PerfexError(f"labels file {path} must be a .csv, .csv.gz or ChaLearn annotation .pkl file")
    duplicated = table.index.duplicated()
    if duplicated.any():
        raise PerfexError(f"{path}: video {table.index[duplicated][0]!r} is listed more than once; keep one row per video")
    return table


def _trait_of_column(column: str) -> str | None:
    """Map 'extroversion', 'extraversion', 'ValueExtraversion', 'ValueNeurotisicm', ... to a PerFeX trait name."""
    key = column.strip().lower()
    return _TRAIT_SPELLINGS.get(key.removeprefix("value") if key.startswith("value") else key)


def _read_label_rows(path: Path) -> pd.DataFrame:
    """Every cell as text; a file whose header holds no comma but semicolons or tabs is read with that delimiter."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if len(frame.columns) == 1 and (separator := next((s for s in ";\t" if s in frame.columns[0]), None)):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep=separator)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError) as err:
        raise PerfexError(f"labels file {path} could not be read as CSV ({str(err).splitlines()[0]})") from None
    return frame


def _shown(names) -> str:
    from .readers.messages import name_list

    return name_list([str(name) for name in names])


def _labels_from_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    frame = _read_label_rows(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    name_column = next((c for c in _VIDEO_NAME_COLUMNS if c in frame.columns), None)
    traits = {_trait_of_column(c): c for c in frame.columns if _trait_of_column(c)}
    missing = [t for t in TRAITS if t not in traits]
    if name_column is None or missing:
        lacks = ([f"a video name column ({' or '.join(_VIDEO_NAME_COLUMNS)})"] if name_column is None else []) + missing
        raise PerfexError(
            f"labels file {path} lacks {', '.join(lacks)} (found: {_shown(frame.columns)}); a labels CSV needs "
            "File + extroversion,neuroticism,agreeableness,conscientiousness,openness or the ChaLearn columns"
        )
    values = {}
    for trait in TRAITS:
        text = frame[traits[trait]].str.strip()
        numbers = pd.to_numeric(text.replace("", "nan"), errors="coerce")
        bad = numbers.isna() & ~text.str.lower().isin(["", "nan"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise PerfexError(
                f"labels file {path}: row {row + 1} (file line {row + 2}), column {traits[trait]!r} holds "
                f"{text.iloc[row]!r}, not a number; trait scores must be numbers in [0, 1]"
            )
        # pandas 3's to_numeric can be one unit in the last place off on 17-digit text; Python's parser is exact
        values[trait] = text.replace("", "nan").astype(np.float64).to_numpy()
    return pd.DataFrame(values, index=pd.Index(frame[name_column].str.strip().to_numpy(), name="File", dtype=object))


def _labels_from_annotation(annotation: object, path: Path) -> pd.DataFrame:
    """ChaLearn annotation dict (trait -> {video name -> score}); keys other than the five traits are ignored."""
    import pandas as pd

    if not isinstance(annotation, dict):
        raise PerfexError(f"{path} holds a {type(annotation).__name__}, "
                          "not a ChaLearn annotation dict (trait -> {video name -> score})")
    by_trait = {_trait_of_column(str(key)): value for key, value in annotation.items() if _trait_of_column(str(key))}
    missing = [t for t in TRAITS if t not in by_trait]
    if missing or not all(isinstance(v, dict) for v in by_trait.values()):
        raise PerfexError(
            f"{path} lacks the traits {', '.join(missing) or '(as dicts)'}: a ChaLearn annotation pickle maps each trait to "
            f"{{video name -> score}} (found keys: {_shown(annotation)})"
        )
    videos = list(dict.fromkeys(name for trait in TRAITS for name in by_trait[trait]))
    try:
        values = {t: np.array([by_trait[t].get(v, np.nan) for v in videos], dtype=np.float64) for t in TRAITS}
    except (TypeError, ValueError):
        raise PerfexError(f"{path}: a trait score is not a number; the annotation must map video names to numbers") from None
    return pd.DataFrame(values, index=pd.Index([str(v) for v in videos], name="File", dtype=object))


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only the numpy scalar/dtype constructors that a ChaLearn annotation pickle references."""

    def __init__(self, handle, path: Path):
        super().__init__(handle, encoding="latin-1")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_PICKLE_GLOBALS:
            raise PerfexError(
                f"refusing to load {self.path}: the pickle imports {module}.{name}, which a labels file never needs")
        if name == "dtype":
            return np.dtype
        from numpy._core.multiarray import scalar

        return scalar


def load_pickle_restricted(path: str | Path) -> object:
    """Unpickle ``path`` (latin-1) allowing nothing but numpy scalars and dtypes; anything else is refused."""
    path = Path(path)
    try:
        data = path.read_bytes()
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except PerfexError:
        raise
    except FileNotFoundError:
        raise PerfexError(f"labels file {path} does not exist; check the path given to --labels") from None
    except Exception as err:  # any malformed pickle: report it as bad input, never run anything else
        raise PerfexError(f"{path} could not be read as a ChaLearn annotation pickle ({type(err).__name__}: {err})") from None
