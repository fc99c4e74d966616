"""Arrow CSV reading shared by every format: typed column reads, record batches, and errors that name row and column."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ....core.errors import PerfexError
from ....core.schema import ID_COLUMN
from ..messages import UnreadableFile
from ..sniff import DELIMITER_NAMES, Sniffed, head, is_gzip

_NUMBER = r"^\s*([+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity|nan))?\s*$"
_INTEGER = r"^\s*[+-]?\d+\s*$"
WHOLE_READ_BLOCK = 4 << 20  # bytes per parse block when a whole file is read at once
_MALFORMED_ROW = re.compile(r"Expected \d+ columns, got \d+")  # Arrow's error for a row with the wrong field count


def source_of(path: Path) -> str | pa.NativeFile:
    """What Arrow reads: the path, or a gzip stream when the name ends in .gz in any letter case."""
    return pa.input_stream(str(path), compression="gzip") if is_gzip(path) else str(path)


class RowCollector:
    """invalid_row_handler: remember rows whose field count differs from the header's, and skip them."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, int | None]] = []

    def __call__(self, row) -> str:
        self.rows.append((row.expected_columns, row.actual_columns, row.number))
        return "skip"


def _parse(sniffed: Sniffed, handler) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(delimiter=sniffed.delimiter, invalid_row_handler=handler)


def convert_options(types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    """Read only ``types``' columns, as typed; empty strings (e.g. an empty File or augmentation) are missing."""
    return pacsv.ConvertOptions(include_columns=list(types), column_types=types, strings_can_be_null=True)


def read_columns(path: Path, sniffed: Sniffed, types: dict[str, pa.DataType], collector: RowCollector) -> pa.Table:
    """Only the ``types`` columns of ``path``, converted as given (multithreaded; 4 MB blocks parsed the 1,000-clip
    bench file in 0.16 s against 0.20 s with Arrow's default 1 MB). The threaded read gets no Python row handler:
    Arrow's worker threads drop their reference to it late, and one doing so while the interpreter shuts down aborts
    the process ("terminate called without an active exception"); a file with malformed rows is read again on this
    thread, ``collector`` recording them."""
    try:
        try:
            return _read_whole(path, sniffed, types, None)
        except pa.ArrowInvalid as err:
            if not _MALFORMED_ROW.search(str(err)):
                raise
        return _read_whole(path, sniffed, types, collector)
    except pa.ArrowInvalid as err:
        raise_unparsable(path, sniffed, types, err)
    except OSError as err:
        raise UnreadableFile(f"{path} could not be read ({err}); pass a plain .csv or a valid gzip .csv.gz file") from None


def _read_whole(path: Path, sniffed: Sniffed, types: dict[str, pa.DataType], collector: RowCollector | None) -> pa.Table:
    """One read of the whole file: on Arrow's threads without a row handler, or on this thread with ``collector``."""
    read_options = pacsv.ReadOptions(block_size=WHOLE_READ_BLOCK, use_threads=collector is None)
    return pacsv.read_csv(source_of(path), read_options=read_options, parse_options=_parse(sniffed, collector),
                          convert_options=convert_options(types))


def open_batches(path: Path, sniffed: Sniffed, types: dict[str, pa.DataType], collector: RowCollector,
                 chunk_rows: int) -> pacsv.CSVStreamingReader:
    """A record-batch reader over the ``types`` columns, batches of about a quarter of ``chunk_rows`` rows."""
    try:
        return pacsv.open_csv(source_of(path), read_options=pacsv.ReadOptions(block_size=block_bytes(path, chunk_rows)),
                              parse_options=_parse(sniffed, collector), convert_options=convert_options(types))
    except pa.ArrowInvalid as err:
        raise_unparsable(path, sniffed, types, err)
    except OSError as err:
        raise UnreadableFile(f"{path} could not be read ({err}); pass a plain .csv or a valid gzip .csv.gz file") from None


def fits_one_chunk(path: Path, chunk_rows: int) -> bool:
    """Whether a plain CSV holds about ``chunk_rows`` rows or fewer (estimated from its size and first lines): then
    one multithreaded read is faster than streaming it, within the same memory bound. Gzip files always stream."""
    return not is_gzip(path) and path.stat().st_size / first_lines(path)[0] <= chunk_rows


def block_bytes(path: Path, chunk_rows: int) -> int:
    """CSV block size for about a quarter of ``chunk_rows`` rows, at most 1 MB (Arrow's memory grows with it)."""
    row_bytes, longest = first_lines(path)
    return int(np.clip(row_bytes * chunk_rows / 4, max(1 << 14, 4 * longest), 1 << 20))


def first_lines(path: Path) -> tuple[float, int]:
    """(mean bytes per line, longest line) over the file's first lines."""
    start = head(path)
    lines = start.split(b"\n")[:-1] or [start]
    return len(start) / len(lines), max(map(len, lines))


def _delimiter_hint(sniffed: Sniffed) -> str:
    if sniffed.delimiter == ",":
        return ""
    return (f" (the file is {DELIMITER_NAMES[sniffed.delimiter]}-separated; if it writes decimals with a comma, "
            "convert it to '.' decimals)")


def raise_unparsable(path: Path, sniffed: Sniffed, types: dict[str, pa.DataType], err: Exception) -> None:
    """Turn an Arrow parse/conversion failure into a message naming the row and column (found by a second pass)."""
    found = _first_unparsable(path, sniffed, types)
    if found is None:
        first_line = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise UnreadableFile(f"{path} could not be read as CSV ({first_line}); "
                             "pass a PerFeX or AU extractor .csv or .csv.gz file") from None
    row, name, value = found
    integer = pa.types.is_integer(types[name])
    need = "an integer clip ID" if name.strip() == ID_COLUMN else "an integer" if integer else "a number"
    raise PerfexError(f"{path}: row {row + 1} (file line {row + 2}), column {name.strip()!r} holds {value!r}, not {need}"
                      f"{_delimiter_hint(sniffed)}; fix or remove that row") from None


def _first_unparsable(path: Path, sniffed: Sniffed, types: dict[str, pa.DataType]) -> tuple[int, str, str] | None:
    """(0-based data row, column, text) of the first value that is not a number where one is needed."""
    numeric = {name: kind for name, kind in types.items() if pa.types.is_integer(kind) or pa.types.is_floating(kind)}
    null_values = pa.array(pacsv.ConvertOptions().null_values)
    try:
        reader = pacsv.open_csv(source_of(path), read_options=pacsv.ReadOptions(use_threads=False),
                                parse_options=_parse(sniffed, lambda row: "skip"),
                                convert_options=pacsv.ConvertOptions(include_columns=list(numeric),
                                                                      column_types={n: pa.string() for n in numeric}))
        first_row = 0
        for batch in reader:
            hits = []
            for name, kind in numeric.items():
                column = batch.column(name)
                pattern = _INTEGER if pa.types.is_integer(kind) else _NUMBER
                ok = pc.or_(pc.is_in(column, value_set=null_values), pc.match_substring_regex(column, pattern, ignore_case=True))
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


def raise_bad_rows(path: Path, sniffed: Sniffed, rows: list[tuple[int, int, int | None]], hint: str) -> None:
    """A row with the wrong number of fields: name its line (a truncated file can be recorded by a tolerant deploy)."""
    expected, actual, line = rows[0]
    if line is None:
        line = _first_invalid_line(path, sniffed)
    raise UnreadableFile(f"{path}: {f'line {line}' if line else 'a line'} has {actual} fields but the header has "
                         f"{expected} (a truncated or malformed row); {hint}")


def _first_invalid_line(path: Path, sniffed: Sniffed) -> int | None:
    """File line of the first row with the wrong field count (a single-threaded pass numbers rows)."""
    collector, first_column = RowCollector(), sniffed.header[0]
    pacsv.read_csv(source_of(path), read_options=pacsv.ReadOptions(use_threads=False), parse_options=_parse(sniffed, collector),
                   convert_options=pacsv.ConvertOptions(include_columns=[first_column],
                                                        column_types={first_column: pa.string()}))
    return collector.rows[0][2] if collector.rows else None


def numbers(column: pa.Array | pa.ChunkedArray, null: float = np.nan) -> np.ndarray:
    """A numeric Arrow column as NumPy, nulls replaced by ``null``. Arrow's own ``to_numpy`` (like any conversion of a
    Python value to Arrow) imports pandas, 0.2-0.3 s that deploy never needs."""
    if not pa.types.is_integer(column.type) and not pa.types.is_floating(column.type):
        raise TypeError(f"numbers() reads integer and float columns, not {column.type}")
    dtype = np.dtype(column.type.to_pandas_dtype())
    parts = []
    for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
        rows = slice(chunk.offset, chunk.offset + len(chunk))
        values = np.frombuffer(chunk.buffers()[1], dtype=dtype)[rows]
        if chunk.null_count:
            valid = np.unpackbits(np.frombuffer(chunk.buffers()[0], dtype=np.uint8), bitorder="little")[rows]
            values = np.where(valid.astype(bool), values, null)
        parts.append(values)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)


def feature_matrix(table: pa.Table, columns: list[str]) -> np.ndarray:
    """The ``columns`` as one C-contiguous float32 [rows, F] matrix, filled batch by batch so writes stay in cache."""
    matrix = np.empty((table.num_rows, len(columns)), dtype=np.float32)
    start = 0
    for batch in table.select(columns).to_batches():
        stop = start + batch.num_rows
        for j in range(len(columns)):
            matrix[start:stop, j] = numbers(batch.column(j))
        start = stop
    return matrix


def string_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(int code of each row, -1 where empty; the distinct strings) without building Python strings per row."""
    names = pc.unique(column).drop_null()
    codes = numbers(pc.index_in(column, value_set=names), null=-1).astype(np.int64)
    return codes, np.asarray(names.to_pylist(), dtype=object)


def all_columns_types(sniffed: Sniffed, types: dict[str, pa.DataType]) -> dict[str, pa.DataType]:
    """``types`` widened to every column of the file (others as text), float32 read as float64 so they print back
    as written; for deploy's per-frame output, which carries all input columns."""
    wide = {name: pa.string() for name in dict.fromkeys(sniffed.header)}
    wide.update({name: pa.float64() if kind == pa.float32() else kind for name, kind in types.items()})
    return wide


def read_whole_file(source, types: dict, keep_rows: bool) -> pa.Table:
    """An extractor file's needed columns (every column with ``keep_rows``); a malformed row is a one-line error."""
    collector = RowCollector()
    table = read_columns(source.path, source.sniffed, all_columns_types(source.sniffed, types) if keep_rows else types,
                         collector)
    if collector.rows:
        raise_bad_rows(source.path, source.sniffed, collector.rows, "repair or remove that line")
    return table
