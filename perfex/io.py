"""Readers for PerFeX long CSVs and OpenFace 2 CSVs: validated, grouped once, returned as one ClipSet."""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .augment import AUGMENTATION_COLUMN, SOURCE_COLUMN
from .cache import cache_file, load_cached, save_cached
from .clips import ClipSet, concat_clipsets, empty_levels
from .errors import PerfexError
from .labels import BINNINGS, read_labels, scores_to_levels, strip_video_extension
from .schema import AU_INTENSITY_COLUMNS, FILE_COLUMN, FPS, ID_COLUMN, TRAIT_ALIASES, TRAITS
from .tables import group_rows

PERFEX, OPENFACE = "perfex", "openface"
NAN_POLICIES = ("error", "drop-frames", "interpolate")
NAN_HINT = "pass --nan drop-frames or --nan interpolate, or fix the file"
_NUMBER = r"^\s*([+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan))?\s*$"
_INTEGER = r"^\s*[+-]?\d+\s*$"
_NULL_VALUES = pa.array(pacsv.ConvertOptions().null_values)
_SNIFF_BYTES = 1 << 16
_TRAIT_SPELLINGS = {trait: (trait, *(alias for alias, name in TRAIT_ALIASES.items() if name == trait)) for trait in TRAITS}


@dataclass(frozen=True)
class _Options:
    """What a file's parse depends on (also the cache key)."""

    features: tuple[str, ...]
    nan_policy: str
    min_confidence: float

    def __post_init__(self) -> None:
        if self.nan_policy not in NAN_POLICIES:
            raise PerfexError(f"unknown NaN policy {self.nan_policy!r}; use one of {', '.join(NAN_POLICIES)}")
        if not self.features:
            raise PerfexError("no feature columns requested; use the 17 AU intensity columns (--features au)")


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Files as given; directories searched recursively for *.csv and *.csv.gz (sorted)."""
    found: list[Path] = []
    for given in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(given)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
            if not files:
                raise PerfexError(f"{path} holds no .csv or .csv.gz file; point --data at CSV files or folders of them")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise PerfexError(f"{path} does not exist; check the path given to --data")
    if not found:
        raise PerfexError("no input files given; pass --data with CSV files or folders")
    return found


def _head(path: Path) -> bytes:
    """The first 64 KB of the (decompressed) file, extended to the end of the first line if that is longer."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(_SNIFF_BYTES)
            return head if b"\n" in head else head + handle.readline()
    except (OSError, EOFError, zlib.error) as err:
        raise PerfexError(f"{path} could not be read ({err}); pass a plain .csv or a valid gzip .csv.gz file") from None


def _header(path: Path) -> list[str]:
    """Raw column names of the header line (OpenFace names keep their leading space)."""
    head = _head(path)
    line = head.split(b"\n", 1)[0]
    if not head.strip():
        raise PerfexError(f"{path} is empty; pass a CSV with a header line and one row per frame")
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\x00"
    if b"\x00" in head or "\x00" in text:
        raise PerfexError(f"{path} is not a CSV text file (it holds binary data); pass a PerFeX or OpenFace .csv or .csv.gz file")
    return next(csv.reader([text.rstrip("\r\n")]))


def _format_of(header: list[str]) -> str:
    names = {name.strip() for name in header}
    return OPENFACE if "frame" in names and names & {"success", "confidence"} else PERFEX


def detect_format(path: Path) -> str:
    """'openface' (header has frame and success/confidence columns) or 'perfex'."""
    return _format_of(_header(Path(path)))


def _raw_names(header: list[str]) -> dict[str, str]:
    """Stripped column name -> name as written (the first of duplicates wins)."""
    raw: dict[str, str] = {}
    for name in header:
        raw.setdefault(name.strip(), name)
    return raw


def _require_features(path: Path, raw: dict[str, str], features: tuple[str, ...]) -> None:
    missing = [name for name in features if name not in raw]
    if missing:
        raise PerfexError(
            f"{path} lacks the column(s) {', '.join(missing)} that the model reads as input; "
            "add them (OpenFace AUxx_r intensities) or choose other --features"
        )


class _RowCollector:
    """invalid_row_handler: remember rows whose field count differs from the header's, and skip them."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int | None]] = []

    def __call__(self, row) -> str:
        self.rows.append((row.expected_columns, row.actual_columns, row.number))
        return "skip"


def _convert_options(types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    """Read only ``types``' columns, as typed; empty strings (e.g. an empty File or augmentation) are missing."""
    return pacsv.ConvertOptions(include_columns=list(types), column_types=types, strings_can_be_null=True)


def _read_csv(path: Path, types: dict[str, pa.DataType], collector: _RowCollector) -> pa.Table:
    """Only the ``types`` columns of ``path``, converted as given (multithreaded)."""
    try:
        return pacsv.read_csv(path, parse_options=pacsv.ParseOptions(invalid_row_handler=collector),
                              convert_options=_convert_options(types))
    except pa.ArrowInvalid as err:
        _raise_unreadable(path, types, err)
    except OSError as err:
        raise PerfexError(f"{path} could not be read ({err}); pass a plain .csv or a valid gzip .csv.gz file") from None


def _raise_unreadable(path: Path, types: dict[str, pa.DataType], err: Exception) -> None:
    """Turn an Arrow parse/conversion failure into a message naming the row and column (found by a second pass)."""
    found = _first_unparsable(path, types)
    if found is None:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PerfexError(f"{path} could not be read as CSV ({first_line}); "
                          "pass a PerFeX or OpenFace .csv or .csv.gz file") from None
    row, name, value = found
    integer = pa.types.is_integer(types[name])
    need = "an integer clip ID" if name.strip() == ID_COLUMN else "an integer" if integer else "a number"
    raise PerfexError(f"{path}: row {row + 1} (file line {row + 2}), column {name.strip()!r} holds {value!r}, not {need}; "
                      "fix or remove that row") from None


def _first_unparsable(path: Path, types: dict[str, pa.DataType]) -> tuple[int, str, str] | None:
    """(0-based data row, column, text) of the first value that is not a number where one is needed."""
    numeric = {name: kind for name, kind in types.items() if pa.types.is_integer(kind) or pa.types.is_floating(kind)}
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(use_threads=False),
                                parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
                                convert_options=pacsv.ConvertOptions(include_columns=list(numeric),
                                                                      column_types={n: pa.string() for n in numeric}))
        first_row = 0
        for batch in reader:
            hits = []
            for name, kind in numeric.items():
                column = batch.column(name)
                pattern = _INTEGER if pa.types.is_integer(kind) else _NUMBER
                ok = pc.or_(pc.is_in(column, value_set=_NULL_VALUES), pc.match_substring_regex(column, pattern, ignore_case=True))
                bad = np.flatnonzero(~ok.to_numpy(zero_copy_only=False))
                if len(bad):
                    hits.append((int(bad[0]), name, column[int(bad[0])].as_py()))
            if hits:
                row, name, value = min(hits, key=lambda hit: hit[0])
                return first_row + row, name, value
            first_row += batch.num_rows
    except (pa.ArrowInvalid, OSError):
        return None
    return None


def _raise_bad_rows(path: Path, rows: list[tuple[int, int, int | None]], hint: str) -> None:
    expected, actual, line = rows[0]
    if line is None:
        line = _first_invalid_line(path)
    raise PerfexError(f"{path}: {f'line {line}' if line else 'a line'} has {actual} fields but the header has {expected} "
                      f"(a truncated or malformed row); {hint}")


def _first_invalid_line(path: Path) -> int | None:
    """File line of the first row with the wrong field count (a single-threaded pass numbers rows)."""
    collector, first_column = _RowCollector(), _header(path)[0]
    pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False),
                   parse_options=pacsv.ParseOptions(invalid_row_handler=collector),
                   convert_options=pacsv.ConvertOptions(include_columns=[first_column], column_types={first_column: pa.string()}))
    return collector.rows[0][2] if collector.rows else None


# --- PerFeX long CSV -------------------------------------------------------------------------------------


def _perfex_columns(path: Path, header: list[str], features: tuple[str, ...]) -> tuple[dict[str, str], dict[str, pa.DataType]]:
    """(stripped -> raw name of every column used, raw name -> Arrow type) for a PerFeX long CSV."""
    raw = _raw_names(header)
    missing = [name for name in (ID_COLUMN, FILE_COLUMN) if name not in raw]
    if missing:
        raise PerfexError(
            f"{path} has no {' or '.join(repr(m) for m in missing)} column (found: {', '.join(list(raw)[:8])}"
            f"{', ...' if len(raw) > 8 else ''}); a PerFeX long CSV needs ID, File and the AU columns, "
            "an OpenFace CSV its frame, timestamp and success columns"
        )
    _require_features(path, raw, features)
    used = {ID_COLUMN: raw[ID_COLUMN], FILE_COLUMN: raw[FILE_COLUMN], **{name: raw[name] for name in features}}
    for trait, spellings in _TRAIT_SPELLINGS.items():
        for spelling in spellings:
            if spelling in raw:
                used.setdefault(trait, raw[spelling])
    for name in (SOURCE_COLUMN, AUGMENTATION_COLUMN):
        if name in raw:
            used[name] = raw[name]
    kind = {ID_COLUMN: pa.int64(), FILE_COLUMN: pa.string(), SOURCE_COLUMN: pa.float64(), AUGMENTATION_COLUMN: pa.string()}
    types = {column: kind.get(name, pa.float64() if name in TRAITS else pa.float32()) for name, column in used.items()}
    return used, types


def _row_label(first_row: int) -> Callable[[int], str]:
    return lambda row: f"row {first_row + row + 1} (file line {first_row + row + 2})"


def _clip_ids(table: pa.Table, used: dict[str, str], path: Path, first_row: int) -> np.ndarray:
    column = table.column(used[ID_COLUMN])
    if column.null_count:
        row = int(np.flatnonzero(pc.is_null(column).to_numpy())[0])
        raise PerfexError(f"{path}: {_row_label(first_row)(row)} has no ID; every row needs its clip's integer ID")
    return column.to_numpy()


def _runs(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row of each run of equal ids, id of each run)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64), ids
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    return starts, ids[starts]


def _first_repeat(run_ids: np.ndarray) -> int | None:
    """Index of the first run whose id already had a run, or None when every run is a different clip."""
    _, first = np.unique(run_ids, return_index=True)
    if len(first) == len(run_ids):
        return None
    repeat = np.ones(len(run_ids), dtype=bool)
    repeat[first] = False
    return int(np.argmax(repeat))


def _group_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(clip ids in order of first appearance, row order or None when already contiguous, offsets)."""
    starts, run_ids = _runs(ids)
    if _first_repeat(run_ids) is None:
        return run_ids, None, np.append(starts, len(ids)).astype(np.int64)
    return group_rows(ids)


def _per_clip(values: np.ndarray, rows: np.ndarray | None, offsets: np.ndarray, what: str, names: np.ndarray | None,
              clip_ids: np.ndarray, path: Path, first_row: int) -> np.ndarray:
    """The value of each clip, after checking that every row of the clip holds the same one."""
    grouped = values if rows is None else values[rows]
    firsts = grouped[offsets[:-1]]
    expected = np.repeat(firsts, np.diff(offsets))
    differs = grouped != expected
    if grouped.dtype.kind == "f":
        differs &= ~(np.isnan(grouped) & np.isnan(expected))
    if differs.any():
        at = int(np.flatnonzero(differs)[0])
        clip = int(np.searchsorted(offsets, at, side="right") - 1)
        first, other = (offsets[clip], at) if rows is None else (rows[offsets[clip]], rows[at])
        show = (lambda v: repr(names[v])) if names is not None else (lambda v: f"{v:g}")
        raise PerfexError(
            f"{path}: clip {clip_ids[clip]} changes its {what} from {show(grouped[offsets[clip]])} at "
            f"{_row_label(first_row)(first)} to {show(grouped[at])} at {_row_label(first_row)(other)}; "
            f"{what} must be constant within a clip: fix the file"
        )
    return firsts


def _string_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(int code of each row, -1 where empty; the distinct strings) without building Python strings per row."""
    names = pc.unique(column).drop_null()
    codes = pc.fill_null(pc.index_in(column, value_set=names), -1).to_numpy()
    return codes, np.asarray(names.to_pylist(), dtype=object)


def _feature_matrix(table: pa.Table, columns: list[str]) -> np.ndarray:
    """The ``columns`` as one C-contiguous float32 [rows, F] matrix, filled batch by batch so writes stay in cache."""
    matrix = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    start = 0
    for batch in table.select(columns).to_batches():
        stop = start + batch.num_rows
        for j in range(len(columns)):
            matrix[start:stop, j] = batch.column(j).to_numpy(zero_copy_only=False)
        start = stop
    return matrix


def _perfex_clips(table: pa.Table, used: dict[str, str], groups: tuple, options: _Options, path: Path,
                  first_row: int) -> ClipSet:
    """Rows of complete clips (grouped as ``groups``) -> ClipSet with scores (NaN = unlabelled), levels not yet set."""
    clip_ids, rows, offsets = groups
    at = _row_label(first_row)
    file_codes, file_names = _string_codes(table.column(used[FILE_COLUMN]))
    if (file_codes < 0).any():
        row = int(np.flatnonzero(file_codes < 0)[0])
        raise PerfexError(f"{path}: {at(row)} has no File; every row needs its source video name")

    def per_clip(values: np.ndarray, what: str, names: np.ndarray | None = None) -> np.ndarray:
        return _per_clip(values, rows, offsets, what, names, clip_ids, path, first_row)

    files = file_names[per_clip(file_codes, "File", file_names)]
    scores = np.full((len(clip_ids), len(TRAITS)), np.nan)
    for t, trait in enumerate(TRAITS):
        if trait in used:
            scores[:, t] = per_clip(table.column(used[trait]).to_numpy(), trait)
    source_ids = augmentation = None
    if SOURCE_COLUMN in used:  # read as float: pandas writes an integer column with gaps as 1.0, 2.0, ...
        source = per_clip(table.column(used[SOURCE_COLUMN]).to_numpy(), SOURCE_COLUMN)
        if (source != np.round(source))[~np.isnan(source)].any():
            raise PerfexError(f"{path}: column {SOURCE_COLUMN!r} holds a non-integer value; it must name the source clip's ID")
        source_ids = np.where(np.isnan(source), clip_ids, source).astype(np.int64)
    if AUGMENTATION_COLUMN in used:
        codes, names = _string_codes(pc.fill_null(table.column(used[AUGMENTATION_COLUMN]), "none"))
        augmentation = names[per_clip(codes, AUGMENTATION_COLUMN, names)]

    features = _feature_matrix(table, [used[name] for name in options.features])
    if rows is not None:
        features = features[rows]
    lengths = np.diff(offsets)
    times = ((np.arange(table.num_rows) - np.repeat(offsets[:-1], lengths)) / FPS).astype(np.float32)
    file_row = (lambda r: at(r)) if rows is None else (lambda r: at(int(rows[r])))
    features, times, offsets, dropped = _apply_nan_policy(
        features, times, offsets, np.zeros(len(clip_ids), dtype=np.int64), options, path, clip_ids, file_row)
    return ClipSet(ids=clip_ids, files=files.astype(object), offsets=offsets, features=features, times=times,
                   feature_names=options.features, scores=scores, source_ids=source_ids, augmentation=augmentation,
                   dropped_frames=dropped, origin=[str(path)])


def _read_perfex(path: Path, header: list[str], options: _Options) -> ClipSet:
    used, types = _perfex_columns(path, header, options.features)
    collector = _RowCollector()
    table = _read_csv(path, types, collector)
    if collector.rows:
        _raise_bad_rows(path, collector.rows, "repair or remove that line")
    if table.num_rows == 0:
        raise PerfexError(f"{path} has a header but no data rows; pass a file with one row per frame")
    groups = _group_ids(_clip_ids(table, used, path, 0))
    return _perfex_clips(table, used, groups, options, path, 0)


def _block_bytes(path: Path, chunk_rows: int) -> int:
    """CSV block size for about a quarter of ``chunk_rows`` rows, at most 1 MB (Arrow's memory grows with it)."""
    head = _head(path)
    lines = head.split(b"\n")[:-1] or [head]
    rows_bytes = len(head) / len(lines) * chunk_rows / 4
    return int(np.clip(rows_bytes, max(1 << 14, 4 * max(map(len, lines))), 1 << 20))


def _stream_perfex(path: Path, header: list[str], options: _Options, chunk_rows: int) -> Iterator[ClipSet]:
    """Complete clips of a PerFeX CSV, read in record batches."""
    used, types = _perfex_columns(path, header, options.features)
    collector = _RowCollector()
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=_block_bytes(path, chunk_rows)),
                                parse_options=pacsv.ParseOptions(invalid_row_handler=collector),
                                convert_options=_convert_options(types))
    except pa.ArrowInvalid as err:
        _raise_unreadable(path, types, err)
    finished: set = set()
    carry, first_row, at_end = None, 0, False
    while not at_end:
        try:
            table = pa.Table.from_batches([reader.read_next_batch()])
        except StopIteration:
            table, at_end = pa.Table.from_batches([], reader.schema), True
        except pa.ArrowInvalid as err:
            _raise_unreadable(path, types, err)
        if collector.rows:
            _raise_bad_rows(path, collector.rows, "repair or remove that line")
        if carry is not None:
            table = pa.concat_tables([carry, table])
        ids = _clip_ids(table, used, path, first_row)
        starts, run_ids = _runs(ids)
        repeat = _first_repeat(run_ids)
        done_before = next((k for k, clip_id in enumerate(run_ids.tolist()) if clip_id in finished), None)
        if repeat is not None or done_before is not None:
            k = min(k for k in (repeat, done_before) if k is not None)
            raise PerfexError(
                f"{path}: clip ID {run_ids[k]} reappears at {_row_label(first_row)(int(starts[k]))} after other clips; "
                "streaming needs each clip's rows together: sort the file by ID (keeping frame order) or load it whole"
            )
        n_complete = table.num_rows if at_end else (int(starts[-1]) if len(starts) else 0)
        complete_runs = len(starts) if at_end else max(len(starts) - 1, 0)
        carry = table.slice(n_complete)
        if complete_runs:
            offsets = np.append(starts[:complete_runs], n_complete).astype(np.int64)
            groups = (run_ids[:complete_runs], None, offsets)
            yield _perfex_clips(table.slice(0, n_complete), used, groups, options, path, first_row)
            finished.update(run_ids[:complete_runs].tolist())
        first_row += n_complete
    if first_row == 0:
        raise PerfexError(f"{path} has a header but no data rows; pass a file with one row per frame")


# --- OpenFace 2 FeatureExtraction CSV ----------------------------------------------------------------------


def _read_openface(path: Path, header: list[str], options: _Options) -> ClipSet:
    """One OpenFace file -> one clip; failed or low-confidence frames dropped and counted."""
    raw = _raw_names(header)
    if "timestamp" not in raw:
        raise PerfexError(f"{path} looks like OpenFace output but has no 'timestamp' column; "
                          "pass the FeatureExtraction CSV as written")
    _require_features(path, raw, options.features)
    quality = [name for name in ("success", "confidence", "face_id") if name in raw]
    types = {raw["timestamp"]: pa.float64(), **{raw[n]: pa.float64() for n in quality},
             **{raw[n]: pa.float32() for n in options.features}}
    collector = _RowCollector()
    table = _read_csv(path, types, collector)
    too_long = [row for row in collector.rows if row[1] > row[0]]
    if too_long or (collector.rows and options.nan_policy == "error"):
        _raise_bad_rows(path, too_long or collector.rows, "repair or remove that line" if too_long else
                        "pass --nan drop-frames to drop such frames, or repair the file")
    column = lambda name: table.column(raw[name]).to_numpy()  # noqa: E731
    if "face_id" in raw:
        faces = np.unique(column("face_id")[~np.isnan(column("face_id"))])
        if len(faces) > 1:
            raise PerfexError(f"{path} holds {len(faces)} faces (face_id {', '.join(f'{f:g}' for f in faces[:5])}); "
                              "PerFeX reads one face per file: split it by face_id")
    keep = np.ones(table.num_rows, dtype=bool)
    if "success" in raw:
        keep &= column("success") > 0
    if "confidence" in raw:
        keep &= column("confidence") >= options.min_confidence
    kept = np.flatnonzero(keep)
    timestamps = column("timestamp")[kept]
    at = _row_label(0)
    if not np.isfinite(timestamps).all():
        row = int(kept[np.flatnonzero(~np.isfinite(timestamps))[0]])
        raise PerfexError(f"{path}: {at(row)}, column 'timestamp' is not a finite number; "
                          "OpenFace timestamps are needed: repair the file")
    features = _feature_matrix(table, [raw[name] for name in options.features])
    if len(kept) < table.num_rows:
        features = features[kept]
    stem = path.name.removesuffix(".gz").removesuffix(".csv")
    ids = np.array([stem], dtype=object)
    dropped = np.array([table.num_rows - len(kept) + len(collector.rows)], dtype=np.int64)
    features, times, offsets, dropped = _apply_nan_policy(
        features, timestamps, np.array([0, len(kept)], dtype=np.int64), dropped, options, path, ids, lambda r: at(int(kept[r])))
    times = (times - times[0] if len(times) else times).astype(np.float32)
    return ClipSet(ids=ids, files=np.array([stem + ".mp4"], dtype=object), offsets=offsets, features=features, times=times,
                   feature_names=options.features, scores=np.full((1, len(TRAITS)), np.nan), dropped_frames=dropped,
                   origin=[str(path)])


# --- shared steps --------------------------------------------------------------------------------------------


def _apply_nan_policy(features: np.ndarray, times: np.ndarray, offsets: np.ndarray, dropped: np.ndarray, options: _Options,
                      path: Path, clip_ids: np.ndarray, row_label: Callable[[int], str]) -> tuple:
    """Raise on NaN/inf ('error'), drop and count those frames ('drop-frames'), or interpolate them within the clip."""
    finite = np.isfinite(features)
    bad_rows = ~finite.all(axis=1)
    if not bad_rows.any():
        return features, times, offsets, dropped
    names = options.features
    if options.nan_policy == "error":
        row = int(np.flatnonzero(bad_rows)[0])
        col = int(np.flatnonzero(~finite[row])[0])
        value = features[row, col]
        kind = "NaN or empty" if np.isnan(value) else f"{value}"
        raise PerfexError(f"{path}: {row_label(row)}, column {names[col]!r} is {kind}; {NAN_HINT}")
    lengths = np.diff(offsets)
    clip_of_row = np.repeat(np.arange(len(lengths)), lengths)
    if options.nan_policy == "drop-frames":
        keep = ~bad_rows
        kept = np.bincount(clip_of_row[keep], minlength=len(lengths))
        new_offsets = np.zeros_like(offsets)
        np.cumsum(kept, out=new_offsets[1:])
        return features[keep], times[keep], new_offsets, dropped + lengths - kept
    for clip in np.unique(clip_of_row[bad_rows]):
        span = slice(offsets[clip], offsets[clip + 1])
        block, ok, when = features[span], finite[span], times[span]
        for col in np.flatnonzero(~ok.all(axis=0)):
            good = ok[:, col]
            if not good.any():
                raise PerfexError(f"{path}: clip {clip_ids[clip]} has no finite {names[col]} value to interpolate from; "
                                  "pass --nan drop-frames or fix the file")
            block[~good, col] = np.interp(when[~good], when[good], block[good, col])
    return features, times, offsets, dropped


def _parse_file(path: Path, header: list[str], fmt: str, options: _Options, cache_dir: str | Path | None) -> ClipSet:
    """One input file -> ClipSet (scores from the file, NaN where unlabelled), through the cache when given."""
    entry = None
    if cache_dir is not None:
        key = asdict(options) | {"reader": fmt}
        if fmt == PERFEX:
            key.pop("min_confidence")
        entry = cache_file(cache_dir, path, key)
        cached = load_cached(entry, path)
        if cached is not None:
            return cached
    clips = _read_openface(path, header, options) if fmt == OPENFACE else _read_perfex(path, header, options)
    if entry is not None:
        save_cached(entry, clips)
    return clips


class _LabelTable:
    """A labels table looked up by video name, with or without its extension."""

    def __init__(self, path: str | Path):
        table = read_labels(path)
        self.values = table.to_numpy(dtype=np.float64)
        names = table.index.tolist()
        self.position = {strip_video_extension(n): i for i, n in enumerate(names)} | {n: i for i, n in enumerate(names)}
        self.names = names

    def fill(self, clips: ClipSet, fmt: str) -> ClipSet:
        """Give unlabelled clips the table's scores (OpenFace clips also take the table's video name as File)."""
        for k in np.flatnonzero(np.isnan(clips.scores).all(axis=1)):
            key = str(clips.ids[k]) if fmt == OPENFACE else str(clips.files[k])
            i = self.position.get(key, self.position.get(strip_video_extension(key)))
            if i is not None:
                clips.scores[k] = self.values[i]
                if fmt == OPENFACE:
                    clips.files[k] = self.names[i]
        return clips


def _check_binning(label_binning: str | None) -> None:
    if label_binning is not None and label_binning not in BINNINGS and not label_binning.startswith("quantile:"):
        raise PerfexError(f"unknown --label-binning {label_binning!r}; use one of round, floor, quantile")


def _check_new_ids(clips: ClipSet, path: Path, seen: dict) -> None:
    """Clip ids must be unique across input files; ``seen`` maps ids already read to their file."""
    for clip_id in clips.ids.tolist():
        if clip_id in seen:
            raise PerfexError(f"clip ID {clip_id} appears in both {seen[clip_id]} and {path}; IDs must be unique across "
                              "input files: renumber one file's IDs or load the files separately")
    seen.update(dict.fromkeys(clips.ids.tolist(), path))


def _joined(parts: list[ClipSet]) -> ClipSet:
    clips = parts[0] if len(parts) == 1 else concat_clipsets(parts)
    clips.origin = list(dict.fromkeys(clips.origin))
    return clips


def _with_levels(clips: ClipSet, label_binning: str | None, require_labels: bool) -> ClipSet:
    """Bin the scores of labelled clips into levels (-1 for unlabelled ones) and record the binning."""
    labelled = ~np.isnan(clips.scores).all(axis=1)
    if require_labels and not labelled.all():
        k = int(np.flatnonzero(~labelled)[0])
        raise PerfexError(
            f"{int((~labelled).sum())} of {len(clips)} clips have no labels, e.g. clip {clips.ids[k]} ({clips.files[k]}); "
            "fill the trait columns of PerFeX files, or pass --labels with a table naming their videos"
        )
    clips.levels = empty_levels(len(clips))
    clips.label_binning = None
    if labelled.any():
        clips.levels[labelled], clips.label_binning = scores_to_levels(clips.scores[labelled], label_binning, clips.ids[labelled])
    return clips


def load_clips(paths: Sequence[str | Path] | str | Path, *, labels: str | Path | None = None,
               features: Sequence[str] = AU_INTENSITY_COLUMNS, nan_policy: str = "error", min_confidence: float = 0.8,
               label_binning: str | None = None, require_labels: bool = False, cache_dir: str | Path | None = None) -> ClipSet:
    """Read PerFeX long CSVs and/or OpenFace CSVs (files or folders, mixed freely) into one ClipSet.

    ``labels`` is a labels table for OpenFace inputs (and PerFeX clips with empty trait columns).
    """
    options = _Options(tuple(features), nan_policy, float(min_confidence))
    _check_binning(label_binning)
    table = _LabelTable(labels) if labels is not None else None
    parts, seen = [], {}
    for path in expand_inputs(paths):
        header = _header(path)
        fmt = _format_of(header)
        clips = _parse_file(path, header, fmt, options, cache_dir)
        _check_new_ids(clips, path, seen)
        parts.append(table.fill(clips, fmt) if table is not None else clips)
    return _with_levels(_joined(parts), label_binning, require_labels)


def load_labelled(paths: Sequence[str | Path], options: object, features: tuple[str, ...]) -> ClipSet:
    """``load_clips`` with labels required and the data flags of a train or test run (any object with
    ``labels``, ``nan_policy``, ``min_confidence``, ``label_binning`` and ``cache_dir`` attributes)."""
    return load_clips(paths, labels=options.labels, features=features, nan_policy=options.nan_policy,
                      min_confidence=options.min_confidence, label_binning=options.label_binning,
                      require_labels=True, cache_dir=options.cache_dir)


def iter_clip_chunks(paths: Sequence[str | Path] | str | Path, *, chunk_rows: int = 1_000_000, labels: str | Path | None = None,
                     features: Sequence[str] = AU_INTENSITY_COLUMNS, nan_policy: str = "error", min_confidence: float = 0.8,
                     label_binning: str | None = None, require_labels: bool = False,
                     cache_dir: str | Path | None = None) -> Iterator[ClipSet]:
    """Stream inputs as ClipSets of complete clips of about ``chunk_rows`` frames (the same clips as load_clips).

    PerFeX files are read in record batches and need each clip's rows together; ``cache_dir`` is not used here.
    """
    options = _Options(tuple(features), nan_policy, float(min_confidence))
    _check_binning(label_binning)
    if label_binning == "quantile":
        raise PerfexError("--label-binning quantile needs every clip at once to find its edges: load the data whole, "
                          "or pass the recorded 'quantile:...' binning")
    table = _LabelTable(labels) if labels is not None else None
    pending, n_pending, seen = [], 0, {}
    for path in expand_inputs(paths):
        header = _header(path)
        fmt = _format_of(header)
        blocks = [_read_openface(path, header, options)] if fmt == OPENFACE else _stream_perfex(path, header, options, chunk_rows)
        for clips in blocks:
            _check_new_ids(clips, path, seen)
            pending.append(table.fill(clips, fmt) if table is not None else clips)
            n_pending += clips.features.shape[0]
            if n_pending >= chunk_rows:
                chunk, pending, n_pending = _joined(pending), [], 0  # let the parts go before the caller works
                yield _with_levels(chunk, label_binning, require_labels)
    if pending:
        yield _with_levels(_joined(pending), label_binning, require_labels)
