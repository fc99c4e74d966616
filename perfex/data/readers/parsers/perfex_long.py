"""The PerFeX long CSV (one row per frame, ID + File + AU columns): one reader for whole-file and streaming use."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...augment import AUGMENTATION_COLUMN, SOURCE_COLUMN
from ....core.clips import ClipSet
from ....core.errors import PerfexError
from ....core.schema import FILE_COLUMN, FPS, ID_COLUMN, TRAITS, TRAIT_ALIASES, Targets
from ....core.tables import group_rows
from .arrowcsv import (RowCollector, all_columns_types, feature_matrix, fits_one_chunk, numbers, open_batches,
                       raise_bad_rows, raise_unparsable, read_columns, string_codes)
from ..formats import get_format, titles
from ..messages import name_list, row_label
from .nan import apply_nan_policy
from ..options import ReadOptions
from ..parts import InputFile, Part, RowBlock

_TRAIT_SPELLINGS = {trait: (trait, *(alias for alias, name in TRAIT_ALIASES.items() if name == trait)) for trait in TRAITS}
_KINDS = {ID_COLUMN: pa.int64(), FILE_COLUMN: pa.string(), SOURCE_COLUMN: pa.float64(), AUGMENTATION_COLUMN: pa.string()}


def target_columns(raw: dict[str, str], targets: Targets) -> dict[str, str]:
    """Target name -> the file's column holding it (a trait under any of its spellings, any other target under
    exactly its name), for the targets whose column the file has."""
    found = {}
    for name in targets.names:
        column = next((raw[s] for s in _TRAIT_SPELLINGS.get(name, (name,)) if s in raw), None)
        if column is not None:
            found[name] = column
    return found


def require_columns(source: InputFile, raw: dict[str, str], columns: tuple[str, ...]) -> list[str]:
    """The file's names of the canonical ``columns``; a one-line error naming those it lacks."""
    extractor = get_format(source.sniffed.fmt).extractor
    missing = [c for c in columns if extractor.native(c) not in raw]
    if missing:
        raise PerfexError(f"{source.path} lacks the column(s) {name_list(missing)} that the model reads as input; "
                          "add them or choose other --features (see docs/formats.md for each extractor's columns)")
    return [raw[extractor.native(c)] for c in columns]


def _columns(source: InputFile, columns: tuple[str, ...], targets: Targets) -> tuple[dict[str, str], dict[str, str],
                                                                                   dict[str, pa.DataType]]:
    """(stripped -> raw name of every input column used, target -> raw name of its label column, raw name -> Arrow
    type) for a PerFeX long CSV."""
    raw = source.sniffed.raw_names()
    missing = [name for name in (ID_COLUMN, FILE_COLUMN) if name not in raw]
    if missing:
        raise PerfexError(
            f"{source.path} has no {' or '.join(repr(m) for m in missing)} column (found: {name_list(list(raw))}); "
            f"a PerFeX long CSV needs ID, File and the AU columns; {titles('and', long=False)} outputs are "
            "recognised by their frame columns"
        )
    used = {ID_COLUMN: raw[ID_COLUMN], FILE_COLUMN: raw[FILE_COLUMN],
            **dict(zip(columns, require_columns(source, raw, columns)))}
    for name in (SOURCE_COLUMN, AUGMENTATION_COLUMN):
        if name in raw:
            used[name] = raw[name]
    types = {column: _KINDS.get(name, pa.float32()) for name, column in used.items()}
    labels = target_columns(raw, targets)
    types |= {column: pa.float64() for column in labels.values() if column not in types}
    return used, labels, types


def _tables(source: InputFile, types: dict, collector: RowCollector, chunk_rows: int | None) -> Iterator[tuple]:
    """(table, at_end): the whole file at once (also when it fits one chunk), or record batches then an empty table."""
    if chunk_rows is None or fits_one_chunk(source.path, chunk_rows):
        yield read_columns(source.path, source.sniffed, types, collector), True
        return
    reader = open_batches(source.path, source.sniffed, types, collector, chunk_rows)
    while True:
        try:
            yield pa.Table.from_batches([reader.read_next_batch()]), False
        except StopIteration:
            yield pa.Table.from_batches([], reader.schema), True
            return
        except pa.ArrowInvalid as err:
            raise_unparsable(source.path, source.sniffed, types, err)


def read_perfex(source: InputFile, options: ReadOptions, chunk_rows: int | None = None,
                keep_rows: bool = False) -> Iterator[Part]:
    """Complete clips of a PerFeX CSV: all at once (rows of a clip may be spread out) or, with ``chunk_rows``,
    in record batches (each clip's rows must be together)."""
    columns = options.columns_for(None)
    used, labels, types = _columns(source, columns, options.targets)
    collector = RowCollector()
    finished: set = set()
    carry, first_row = None, 0
    for table, at_end in _tables(source, all_columns_types(source.sniffed, types) if keep_rows else types,
                                 collector, chunk_rows):
        if collector.rows:
            raise_bad_rows(source.path, source.sniffed, collector.rows, "repair or remove that line")
        table = table if carry is None else pa.concat_tables([carry, table])
        ids = _clip_ids(table, used, source, first_row)
        if chunk_rows is None:
            groups, n_complete = _group_ids(ids), table.num_rows
        else:
            groups, n_complete = _complete_runs(ids, at_end, finished, source, first_row)
        carry = table.slice(n_complete)
        if len(groups[0]):
            done = table.slice(0, n_complete)
            clips = _perfex_clips(done, used, labels, groups, columns, options, source, first_row)
            yield Part(clips, _row_block(done, used) if keep_rows else None)
            finished.update(groups[0].tolist())
        first_row += n_complete
    if first_row == 0:
        raise PerfexError(f"{source.path} has a header but no data rows; pass a file with one row per frame")


def _row_block(table: pa.Table, used: dict[str, str]) -> RowBlock:
    ids = table.column(used[ID_COLUMN]).to_numpy()
    return RowBlock(table.rename_columns([c.strip() for c in table.column_names]), ids)


def _clip_ids(table: pa.Table, used: dict[str, str], source: InputFile, first_row: int) -> np.ndarray:
    column = table.column(used[ID_COLUMN])
    if column.null_count:
        row = int(np.flatnonzero(pc.is_null(column).to_numpy())[0])
        raise PerfexError(f"{source.path}: {row_label(first_row)(row)} has no ID; every row needs its clip's integer ID")
    return numbers(column)


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


def _complete_runs(ids: np.ndarray, at_end: bool, finished: set, source: InputFile, first_row: int) -> tuple:
    """(groups of the clips known complete, their row count); a clip whose rows are not together is an error."""
    starts, run_ids = _runs(ids)
    repeat = _first_repeat(run_ids)
    done_before = next((k for k, clip_id in enumerate(run_ids.tolist()) if clip_id in finished), None)
    if repeat is not None or done_before is not None:
        k = min(k for k in (repeat, done_before) if k is not None)
        raise PerfexError(
            f"{source.path}: clip ID {run_ids[k]} reappears at {row_label(first_row)(int(starts[k]))} after other "
            "clips; streaming needs each clip's rows together: sort the file by ID (keeping frame order) or load it whole"
        )
    n_complete = len(ids) if at_end else (int(starts[-1]) if len(starts) else 0)
    complete = len(starts) if at_end else max(len(starts) - 1, 0)
    offsets = np.append(starts[:complete], n_complete).astype(np.int64)
    return (run_ids[:complete], None, offsets), n_complete


def _per_clip(values: np.ndarray, groups: tuple, what: str, names: np.ndarray | None, source: InputFile,
              first_row: int) -> np.ndarray:
    """The value of each clip, after checking that every row of the clip holds the same one."""
    clip_ids, rows, offsets = groups
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
        label = row_label(first_row)
        raise PerfexError(
            f"{source.path}: clip {clip_ids[clip]} changes its {what} from {show(grouped[offsets[clip]])} at "
            f"{label(first)} to {show(grouped[at])} at {label(other)}; {what} must be constant within a clip: fix the file"
        )
    return firsts


def _provenance_columns(table: pa.Table, used: dict, per_clip, clip_ids: np.ndarray, source: InputFile) -> tuple:
    """(source ids, augmentation names) of each clip, None where the file has no such column."""
    source_ids = augmentation = None
    if SOURCE_COLUMN in used:  # read as float: pandas writes an integer column with gaps as 1.0, 2.0, ...
        values = per_clip(numbers(table.column(used[SOURCE_COLUMN])), SOURCE_COLUMN)
        if (values != np.round(values))[~np.isnan(values)].any():
            raise PerfexError(f"{source.path}: column {SOURCE_COLUMN!r} holds a non-integer value; "
                              "it must name the source clip's ID")
        source_ids = np.where(np.isnan(values), clip_ids, values).astype(np.int64)
    if AUGMENTATION_COLUMN in used:
        codes, names = string_codes(pc.fill_null(table.column(used[AUGMENTATION_COLUMN]), "none"))
        augmentation = names[per_clip(codes, AUGMENTATION_COLUMN, names)]
    return source_ids, augmentation


def _perfex_clips(table: pa.Table, used: dict[str, str], labels: dict[str, str], groups: tuple,
                  columns: tuple[str, ...], options: ReadOptions, source: InputFile, first_row: int) -> ClipSet:
    """Rows of complete clips (grouped as ``groups``) -> ClipSet with scores of ``options.targets`` (NaN = unlabelled),
    levels not yet set."""
    clip_ids, rows, offsets = groups
    at = row_label(first_row)
    file_codes, file_names = string_codes(table.column(used[FILE_COLUMN]))
    if (file_codes < 0).any():
        row = int(np.flatnonzero(file_codes < 0)[0])
        raise PerfexError(f"{source.path}: {at(row)} has no File; every row needs its source video name")

    def per_clip(values: np.ndarray, what: str, names: np.ndarray | None = None) -> np.ndarray:
        return _per_clip(values, groups, what, names, source, first_row)

    files = file_names[per_clip(file_codes, "File", file_names)]
    targets = options.targets
    scores = np.full((len(clip_ids), len(targets)), np.nan)
    for t, name in enumerate(targets.names):
        if name in labels:
            scores[:, t] = per_clip(numbers(table.column(labels[name])), name)
    source_ids, augmentation = _provenance_columns(table, used, per_clip, clip_ids, source)
    features = feature_matrix(table, [used[name] for name in columns])
    if rows is not None:
        features = features[rows]
    lengths = np.diff(offsets)
    times = ((np.arange(table.num_rows) - np.repeat(offsets[:-1], lengths)) / FPS).astype(np.float32)
    file_row = at if rows is None else (lambda r: at(int(rows[r])))
    features, times, offsets, dropped = apply_nan_policy(
        features, times, offsets, np.zeros(len(clip_ids), dtype=np.int64), options.nan_policy, columns, source.path,
        clip_ids, file_row)
    return ClipSet(ids=clip_ids, files=files.astype(object), offsets=offsets, features=features, times=times,
                   feature_names=columns, scores=scores, source_ids=source_ids, augmentation=augmentation,
                   dropped_frames=dropped, origin=[str(source.path)], provenance=get_format(None).extractor.provenance,
                   targets=targets)
