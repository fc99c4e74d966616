"""Deploy's per-frame CSV: the input rows with the five trait columns filled (level / 4), written chunk by chunk."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..data.readers import InputFile, RowBlock
from ..core.schema import ID_COLUMN, TRAITS
from ..core.tables import atomic_output


def per_frame_columns(sources: list[InputFile]) -> list[str]:
    """Output columns: each readable input's columns in order (an ID column first for extractor files, the trait
    columns after each file's own), joined without repeats."""
    columns: dict[str, None] = {}
    for source in sources:
        if source.sniffed is None:
            continue
        names = [name.strip() for name in source.sniffed.header]
        if source.format is not None and not source.long:
            names = [ID_COLUMN, *(n for n in names if n != ID_COLUMN)]
        columns.update(dict.fromkeys([*names, *(t for t in TRAITS if t not in names)]))
    return list(columns)


class PerFrameWriter:
    """Writes row blocks as they come (memory bounded by one chunk); the file appears only when the block ends
    without error. Use as a context manager."""

    def __init__(self, out: str | Path, columns: list[str]):
        self.out = Path(out)
        self.schema = pa.schema([(name, pa.string()) for name in columns])
        self.rows_written = 0
        self._stack = ExitStack()
        self._writer: pacsv.CSVWriter | None = None

    def __enter__(self) -> PerFrameWriter:
        tmp = self._stack.enter_context(atomic_output(self.out))
        sink = str(tmp)
        if self.out.name.lower().endswith(".gz"):
            sink = self._stack.enter_context(pa.CompressedOutputStream(sink, "gzip"))
        self._writer = self._stack.enter_context(pacsv.CSVWriter(sink, self.schema))
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)

    def write(self, blocks: list[RowBlock], ids: np.ndarray, traits: np.ndarray) -> None:
        """The rows of ``blocks``, trait columns from ``traits`` ([len(ids), 5], NaN: not predicted) by clip id."""
        lookup = pd.Index(np.asarray(ids, dtype=object))
        traits = np.asarray(traits, dtype=np.float64).reshape(len(lookup), len(TRAITS))
        for block in blocks:
            where = lookup.get_indexer(pd.Index(np.asarray(block.row_ids, dtype=object)))
            values = np.where((where >= 0)[:, None], traits[np.maximum(where, 0)] if len(traits) else np.nan, np.nan)
            self._writer.write_table(self._table(block.table, values))
            self.rows_written += block.table.num_rows

    def _table(self, table: pa.Table, values: np.ndarray) -> pa.Table:
        """``table`` in the output's columns, as text; trait columns replaced by ``values``."""
        arrays = []
        for name in self.schema.names:
            if name in TRAITS:
                column = pa.array(values[:, TRAITS.index(name)], type=pa.float64(), from_pandas=True)
            elif name in table.column_names:
                column = table.column(name)
            else:
                column = pa.nulls(table.num_rows)
            arrays.append(pc.cast(column, pa.string()))
        return pa.Table.from_arrays(arrays, schema=self.schema)
