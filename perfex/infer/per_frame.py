"""Deploy's per-frame CSV: the input rows with one column per target filled with its clip's deploy value (a level's
grid value k / (K - 1), e.g. level / 4 for a trait, or a continuous value), written chunk by chunk."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ..data.readers import InputFile, RowBlock
from ..core.schema import BIG_FIVE, ID_COLUMN, Targets
from ..core.tables import atomic_output


def per_frame_columns(sources: list[InputFile], targets: Targets = BIG_FIVE) -> list[str]:
    """Output columns: each readable input's columns in order (an ID column first for extractor files, the target
    columns after each file's own), joined without repeats."""
    columns: dict[str, None] = {}
    for source in sources:
        if source.sniffed is None:
            continue
        names = [name.strip() for name in source.sniffed.header]
        if source.format is not None and not source.long:
            names = [ID_COLUMN, *(n for n in names if n != ID_COLUMN)]
        columns.update(dict.fromkeys([*names, *(t for t in targets.names if t not in names)]))
    return list(columns)


class PerFrameWriter:
    """Writes row blocks as they come (memory bounded by one chunk); the file appears only when the block ends
    without error. Use as a context manager. ``targets``: the columns ``write`` fills (the checkpoint's)."""

    def __init__(self, out: str | Path, columns: list[str], targets: Targets = BIG_FIVE):
        self.out, self.targets = Path(out), targets
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

    def write(self, blocks: list[RowBlock], ids: np.ndarray, values: np.ndarray) -> None:
        """The rows of ``blocks``, target columns from ``values`` ([len(ids), targets], NaN: not predicted) by clip id."""
        lookup = pd.Index(np.asarray(ids, dtype=object))
        per_clip = np.asarray(values, dtype=np.float64).reshape(len(lookup), len(self.targets))
        for block in blocks:
            where = lookup.get_indexer(pd.Index(np.asarray(block.row_ids, dtype=object)))
            filled = np.where((where >= 0)[:, None], per_clip[np.maximum(where, 0)] if len(per_clip) else np.nan, np.nan)
            self._writer.write_table(self._table(block.table, filled))
            self.rows_written += block.table.num_rows

    def _table(self, table: pa.Table, values: np.ndarray) -> pa.Table:
        """``table`` in the output's columns, as text; target columns replaced by ``values``."""
        arrays = []
        for name in self.schema.names:
            if name in self.targets.names:
                column = pa.array(values[:, self.targets.names.index(name)], type=pa.float64(), from_pandas=True)
            elif name in table.column_names:
                column = table.column(name)
            else:
                column = pa.nulls(table.num_rows)
            arrays.append(pc.cast(column, pa.string()))
        return pa.Table.from_arrays(arrays, schema=self.schema)
