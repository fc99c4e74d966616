"""Deploy's per-clip table without pandas: CSV formatting, and Arrow columns read as NumPy."""

import csv
import io

import numpy as np
import pyarrow as pa
import pytest

from perfex.infer.clip_rows import CLIP_COLUMNS, PROB_COLUMNS, join_rows, trait_levels, unreadable_rows, write_rows
from perfex.data.readers import Unreadable
from perfex.data.readers.parsers.arrowcsv import numbers
from perfex.core.schema import TRAITS

pytestmark = pytest.mark.unit


def test_rows_are_written_as_csv_that_reads_back():
    rows = join_rows([unreadable_rows([Unreadable(id="a,b", file='odd "name".csv', reason="empty file")]),
                      unreadable_rows([Unreadable(id="7", file="x.csv", reason="")])])
    rows[PROB_COLUMNS[0]] = np.array([0.123456789, np.nan])
    rows[TRAITS[0]] = np.array([0.25, 1.0])
    handle = io.StringIO()
    write_rows(handle, rows)
    back = list(csv.reader(io.StringIO(handle.getvalue())))
    assert len(rows["ID"]) == len(back) == 2 and list(rows) == CLIP_COLUMNS
    first = dict(zip(CLIP_COLUMNS, back[0]))
    assert first["ID"] == "a,b" and first["File"] == 'odd "name".csv' and first["note"] == "empty file"
    assert first["n_frames"] == "0" and first[PROB_COLUMNS[0]] == "0.123457" and first[TRAITS[0]] == "0.25"
    assert dict(zip(CLIP_COLUMNS, back[1]))[PROB_COLUMNS[0]] == ""  # NaN is an empty field
    np.testing.assert_array_equal(trait_levels(rows)[:, 0], [0.25, 1.0])


@pytest.mark.parametrize("kind", [pa.float32(), pa.float64(), pa.int64(), pa.int32()])
def test_numbers_reads_chunks_offsets_and_nulls(kind):
    values = [[1, None, 3, 4], [5, 6, None]]
    column = pa.chunked_array([pa.array(chunk, type=kind) for chunk in values]).slice(1, 5)
    expected = np.array([np.nan, 3, 4, 5, 6])
    got = numbers(column, null=np.nan if pa.types.is_floating(kind) else -1)
    np.testing.assert_array_equal(got, np.where(np.isnan(expected), np.nan if pa.types.is_floating(kind) else -1, expected))
    with pytest.raises(TypeError, match="integer and float"):
        numbers(pa.array(["a"]))
