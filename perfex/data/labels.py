"""Labels: read labels tables (CSV or ChaLearn pickle) and turn each target's label values into its levels."""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import PerfexError
from ..core.schema import BIG_FIVE, TRAITS, TRAIT_ALIASES, Targets

if TYPE_CHECKING:  # pandas is imported where labels are read, so deploy never pays for it
    import pandas as pd

BINNINGS = ("grid", "round", "floor", "quantile")
GRID_TOLERANCE = 1e-6
BINNING_HINT = "pass --label-binning round|floor|quantile"

# Spellings of each ChaLearn label seen in labels files: PerFeX, ChaLearn, and the 2016 CSV ('ValueNeurotisicm' and
# 'ValueInterview' included); any other target is read from the column of exactly its name.
_TRAIT_SPELLINGS = {name: name for name in (*TRAITS, "interview")} | TRAIT_ALIASES | {"neurotisicm": "neuroticism"}
_VIDEO_NAME_COLUMNS = ("File", "VideoName")
_ALLOWED_PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "dtype"),
}
_VIDEO_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{1,4}$")


def scores_to_levels(scores: np.ndarray, binning: str | None, clip_ids: np.ndarray, targets: Targets = BIG_FIVE,
                     files: Sequence | None = None) -> tuple[np.ndarray, str]:
    """Label values [N, targets] -> (levels [N, targets] int64 in 0..K-1, 0 for continuous targets; binning used).

    ``binning`` is None/'grid' (values on each target's grid k/(K-1)), 'round', 'floor' (the original's
    ``int(x * 4)``), 'quantile' (per-target K-quantiles of these values) or a recorded 'quantile:...' string to reuse.
    Targets other than the Big Five may hold integer levels 0..K-1 instead; ``files`` name their clips in errors.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1, len(targets))
    where = _clip_namer(clip_ids, None if targets.is_big_five else files)
    _check_scores(scores, targets, where)
    scores = on_grid(scores, targets)
    ordinal = [t for t, target in enumerate(targets) if not target.continuous]
    if binning in (None, "grid"):
        _check_on_grid(scores, targets, ordinal, where)
    if binning == "quantile" or (binning or "").startswith("quantile:"):
        edges = _quantile_edges(scores, targets) if binning == "quantile" else recorded_quantile_edges(binning, targets)
        recorded = format_quantile_edges(edges)
    elif binning in (None, *BINNINGS):
        edges, recorded = {}, binning or "grid"
    else:
        raise PerfexError(f"unknown label binning {binning!r}; use one of {', '.join(BINNINGS)}")
    levels = np.zeros(scores.shape, dtype=np.int64)
    for t in ordinal:
        levels[:, t] = _binned(scores[:, t], targets[t].levels - 1, recorded, edges.get(targets[t].name))
    return levels, recorded


def _binned(values: np.ndarray, top: int, binning: str, edges: np.ndarray | None) -> np.ndarray:
    """One level target's values in [0, 1] -> levels 0..top."""
    if edges is not None:
        return np.searchsorted(edges, values, side="left")
    if binning == "grid":
        return np.rint(values * top)
    return np.minimum(np.floor(values * top + (0.5 if binning == "round" else 0.0)), top)


def _clip_namer(clip_ids: Sequence[Hashable], files: Sequence | None) -> Callable[[int], str]:
    """'clip 7' (or 'clip 7 (video.mp4)' when ``files`` are given) for a row of the scores."""
    if files is None:
        return lambda row: f"clip {clip_ids[row]}"
    return lambda row: f"clip {clip_ids[row]} ({files[row]})"


def _integer_levels(values: np.ndarray) -> bool:
    """True when a level target's column holds integer levels 0..K-1 (every value an integer, some above 1)."""
    return len(values) > 0 and bool((values == np.round(values)).all()) and values.max() > 1


def on_grid(scores: np.ndarray, targets: Targets) -> np.ndarray:
    """``scores`` with each level target given as integer levels 0..K-1 moved to its grid k/(K-1)."""
    if targets.is_big_five:
        return scores
    scores = np.array(scores, dtype=np.float64)
    for t, target in enumerate(targets):
        if not target.continuous and _integer_levels(scores[:, t]):
            scores[:, t] /= target.levels - 1
    return scores


def _check_scores(scores: np.ndarray, targets: Targets, where: Callable[[int], str]) -> None:
    """Every label present and valid for its target, else name the first offending clip and target."""
    big_five = targets.is_big_five
    missing = np.isnan(scores)
    if missing.any():
        row, t = np.argwhere(missing)[0]
        raise PerfexError(
            f"{where(row)}: {targets[t].name} is missing while other traits are given; a labelled clip needs all five "
            "traits (fill the missing value or leave all five empty)" if big_five else
            f"{where(row)}: column {targets[t].name!r} has no label while the clip's other --targets columns do; "
            "fill it (in the input file or the --labels table) or leave all of the clip's target columns empty"
        )
    invalid = np.zeros(scores.shape, dtype=bool)
    for t, target in enumerate(targets):
        values = scores[:, t]
        if target.continuous:
            invalid[:, t] = ~np.isfinite(values)
        else:
            top = target.levels - 1 if not big_five and _integer_levels(values) else 1
            invalid[:, t] = (values < 0) | (values > top)
    if invalid.any():
        row, t = np.argwhere(invalid)[0]
        target, value = targets[t], scores[row, t]
        raise PerfexError(
            f"{where(row)}: {target.name} = {value:.6g} is outside [0, 1]; trait scores must lie between 0 and 1 "
            "(rescale the labels)" if big_five else
            f"{where(row)}: {target.name} = {value:.6g} is not a finite number; a continuous target's labels are "
            "finite scores in their own units" if target.continuous else
            f"{where(row)}: {target.name} = {value:.6g} is not a label of a {target.levels}-level target; give integer "
            f"levels 0..{target.levels - 1} or values k/{target.levels - 1} in [0, 1] (or change its level count in "
            "--targets)"
        )


def _check_on_grid(scores: np.ndarray, targets: Targets, ordinal: list[int], where: Callable[[int], str]) -> None:
    """Every level target's value on its grid k/(K-1), else name the first clip off it and the binnings that help."""
    off_grid = np.zeros(scores.shape, dtype=bool)
    for t in ordinal:
        top = targets[t].levels - 1
        off_grid[:, t] = np.abs(scores[:, t] * top - np.rint(scores[:, t] * top)) > GRID_TOLERANCE * top
    if off_grid.any():
        row, t = np.argwhere(off_grid)[0]
        raise PerfexError(
            f"{where(row)}: {targets[t].name} = {scores[row, t]:.6g} is not on the level grid "
            f"{', '.join(f'{v:g}' for v in targets[t].grid)} ({int(off_grid.any(axis=1).sum())} clip(s) are off the "
            f"grid); {BINNING_HINT} to bin continuous scores"
        )


def _quantile_edges(scores: np.ndarray, targets: Targets) -> dict[str, np.ndarray]:
    """Each level target's K-quantile edges (K - 1 of them), rounded to the precision they are recorded with so they
    reproduce exactly."""
    if len(scores) == 0:
        raise PerfexError("--label-binning quantile needs labelled clips to compute the quantile edges")
    quantiles = {target.name: np.quantile(scores[:, t], np.arange(1, target.levels) / target.levels)
                 for t, target in enumerate(targets) if not target.continuous}
    return {name: np.array([float(f"{e:.6g}") for e in row]) for name, row in quantiles.items()}


def format_quantile_edges(edges: Mapping[str, np.ndarray]) -> str:
    """'quantile:extroversion=0.41,0.47,0.52,0.58;neuroticism=...' (reusable as a binning)."""
    return "quantile:" + ";".join(f"{name}={','.join(f'{e:.6g}' for e in row)}" for name, row in edges.items())


def recorded_quantile_edges(binning: str, targets: Targets = BIG_FIVE) -> dict[str, np.ndarray]:
    """Each level target's K - 1 edges in a recorded 'quantile:...' binning string."""
    level_targets = [t for t in targets if not t.continuous]
    try:
        fields = dict(part.split("=", 1) for part in binning.removeprefix("quantile:").split(";") if part)
        edges = {t.name: np.array([float(v) for v in fields[t.name].split(",")]) for t in level_targets}
    except (ValueError, KeyError):
        edges = {}
    if len(edges) < len(level_targets) or any(len(edges[t.name]) != t.levels - 1 or (np.diff(edges[t.name]) < 0).any()
                                              for t in level_targets):
        expected = ("'quantile:extroversion=e1,e2,e3,e4;neuroticism=...;...', five traits, four rising edges each"
                    if targets.is_big_five else "'quantile:NAME=e1,e2,...;...' with K - 1 rising edges for each of "
                    + ", ".join(f"{t.name} (K = {t.levels})" for t in level_targets))
        raise PerfexError(f"label binning {binning!r} is not a recorded quantile binning ({expected})")
    return edges


def parse_quantile_edges(binning: str) -> np.ndarray:
    """The [5, 4] edges of a recorded Big Five 'quantile:...' binning string."""
    edges = recorded_quantile_edges(binning)
    return np.array([edges[trait] for trait in TRAITS])


def strip_video_extension(name: str) -> str:
    """'XQ3do4LDFv8.000.mp4' -> 'XQ3do4LDFv8.000' (a numeric segment suffix like '.000' is kept)."""
    return _VIDEO_EXTENSION.sub("", name)


def read_labels(path: str | Path, targets: Targets = BIG_FIVE) -> pd.DataFrame:
    """Labels table (CSV with File/VideoName + a column per target, or ChaLearn annotation pickle) indexed by video
    name, with one column per target in ``targets`` order."""
    path = Path(path)
    if not path.is_file():
        raise PerfexError(f"labels file {path} does not exist; check the path given to --labels")
    if path.suffix == ".pkl":
        table = _labels_from_annotation(load_pickle_restricted(path), path, targets.names)
    elif path.name.endswith((".csv", ".csv.gz")):
        table = _labels_from_csv(path, targets.names)
    else:
        raise PerfexError(f"labels file {path} must be a .csv, .csv.gz or ChaLearn annotation .pkl file")
    duplicated = table.index.duplicated()
    if duplicated.any():
        raise PerfexError(f"{path}: video {table.index[duplicated][0]!r} is listed more than once; keep one row per video")
    return table


def _target_of_column(column: str, names: tuple[str, ...]) -> str | None:
    """The target among ``names`` that a column holds: its exact name, or a ChaLearn spelling ('extraversion',
    'ValueExtraversion', 'ValueNeurotisicm', 'ValueInterview', ...) of a trait or of interview."""
    stripped = column.strip()
    if stripped in names:
        return stripped
    name = _TRAIT_SPELLINGS.get(stripped.lower().removeprefix("value"))
    return name if name in names else None


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


def _labels_from_csv(path: Path, names: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    big_five = names == TRAITS
    frame = _read_label_rows(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    name_column = next((c for c in _VIDEO_NAME_COLUMNS if c in frame.columns), None)
    columns = {_target_of_column(c, names): c for c in frame.columns if _target_of_column(c, names)}
    missing = [name for name in names if name not in columns]
    if name_column is None or missing:
        lacks = ([f"a video name column ({' or '.join(_VIDEO_NAME_COLUMNS)})"] if name_column is None else []) + missing
        needs = ("File + extroversion,neuroticism,agreeableness,conscientiousness,openness or the ChaLearn columns"
                 if big_five else f"File (or VideoName) and a column named as each --targets label ({', '.join(names)})")
        raise PerfexError(f"labels file {path} lacks {', '.join(lacks)} (found: {_shown(frame.columns)}); a labels CSV "
                          f"needs {needs}")
    values = {}
    for name in names:
        text = frame[columns[name]].str.strip()
        numbers = pd.to_numeric(text.replace("", "nan"), errors="coerce")
        bad = numbers.isna() & ~text.str.lower().isin(["", "nan"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise PerfexError(
                f"labels file {path}: row {row + 1} (file line {row + 2}), column {columns[name]!r} holds "
                f"{text.iloc[row]!r}, not a number; "
                + ("trait scores must be numbers in [0, 1]" if big_five else "labels must be numbers (or left empty)")
            )
        # pandas 3's to_numeric can be one unit in the last place off on 17-digit text; Python's parser is exact
        values[name] = text.replace("", "nan").astype(np.float64).to_numpy()
    return pd.DataFrame(values, index=pd.Index(frame[name_column].str.strip().to_numpy(), name="File", dtype=object))


def _labels_from_annotation(annotation: object, path: Path, names: tuple[str, ...]) -> pd.DataFrame:
    """ChaLearn annotation dict (trait or interview -> {video name -> score}); keys not among ``names`` are ignored."""
    import pandas as pd

    if not isinstance(annotation, dict):
        raise PerfexError(f"{path} holds a {type(annotation).__name__}, "
                          "not a ChaLearn annotation dict (trait -> {video name -> score})")
    by_name = {_target_of_column(str(key), names): value for key, value in annotation.items()
               if _target_of_column(str(key), names)}
    missing = [name for name in names if name not in by_name]
    if missing or not all(isinstance(v, dict) for v in by_name.values()):
        raise PerfexError(
            f"{path} lacks the {'traits' if names == TRAITS else 'labels'} {', '.join(missing) or '(as dicts)'}: a "
            f"ChaLearn annotation pickle maps each trait to {{video name -> score}} (found keys: {_shown(annotation)})"
        )
    videos = list(dict.fromkeys(video for name in names for video in by_name[name]))
    try:
        values = {n: np.array([by_name[n].get(v, np.nan) for v in videos], dtype=np.float64) for n in names}
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
