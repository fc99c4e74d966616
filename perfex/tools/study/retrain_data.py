"""The retrain CSV: the rated clips' frames from the study's original input, in PerFeX long format, a column per rated
trait or target filled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ...core.errors import PerfexError
from ...data.readers import detect_format, load_clips
from ...data.readers.formats import is_long
from ...core.schema import AU_INTENSITY_COLUMNS, FILE_COLUMN, ID_COLUMN
from ...core.tables import read_table, write_table
from ...checkpoint.provenance import sha256


def check_inputs(manifest: dict) -> list[Path]:
    """The study's input files, each still present and byte-identical to what select read."""
    paths = []
    for record in manifest["data"]:
        path = Path(record["path"])
        if not path.is_file():
            raise PerfexError(f"study input {path} is missing; collect reads the rated clips' frames from it (restore it)")
        if sha256(path) != record["sha256"]:
            raise PerfexError(f"study input {path} changed since select (its SHA-256 differs); restore the original file")
        paths.append(path)
    return paths


def _with_traits(table: pa.Table, keys: np.ndarray, labels: pd.DataFrame, study_id: str) -> pa.Table:
    values = labels.reindex(keys).to_numpy()
    for t, trait in enumerate(labels.columns):
        column = pa.array(values[:, t], type=pa.float64())
        if trait in table.column_names:
            table = table.set_column(table.column_names.index(trait), trait, column)
        else:
            table = table.append_column(trait, column)
    return table.append_column("study_id", pa.array(np.full(table.num_rows, study_id, dtype=object), type=pa.string()))


def _perfex_rows(path: Path, labels: pd.DataFrame, study_id: str) -> pa.Table:
    """Every column of the input's rows that belong to rated clips."""
    table = read_table(path)
    ids = table.column(ID_COLUMN).cast(pa.string())
    table = table.filter(pc.is_in(ids, value_set=pa.array(labels.index.tolist(), type=pa.string())))
    return _with_traits(table, table.column(ID_COLUMN).cast(pa.string()).to_numpy(zero_copy_only=False), labels, study_id)


def _extractor_rows(path: Path, labels: pd.DataFrame, study_id: str) -> pa.Table:
    """Rated extractor (OpenFace, py-feat, ...) clips as PerFeX rows: ID (the clip's position in the study, as PerFeX IDs are integers), File
    (the clip name, which keeps its source video), the AU intensities of its tracked frames."""
    clips = load_clips([path])
    names = clips.ids.astype(str)
    keep = [i for i, clip in enumerate(names) if clip in labels.index]
    lengths = [int(clips.offsets[i + 1] - clips.offsets[i]) for i in keep]
    index = np.concatenate([np.arange(clips.offsets[i], clips.offsets[i + 1]) for i in keep]) if keep else np.zeros(0, dtype=int)
    keys = np.repeat(names[keep], lengths) if keep else np.zeros(0, dtype=object)
    position = {clip: n for n, clip in enumerate(labels.index)}
    columns = {ID_COLUMN: np.array([position[k] for k in keys], dtype=np.int64),
               FILE_COLUMN: np.repeat(clips.files[keep], lengths) if keep else keys}
    columns.update({name: clips.features[index, j] for j, name in enumerate(clips.feature_names) if name in AU_INTENSITY_COLUMNS})
    return _with_traits(pa.Table.from_pydict(columns), keys, labels, study_id)


def write_retrain_csv(inputs: list[Path], labels: pd.DataFrame, study_id: str, out: Path) -> int:
    """Write the rated clips' frames with ``labels`` (index: clip ID as text; columns: traits); returns the row count."""
    tables = [(_perfex_rows if is_long(detect_format(path)) else _extractor_rows)(path, labels, study_id) for path in inputs]
    tables = [t for t in tables if t.num_rows]
    if not tables:
        raise PerfexError("none of the rated clips was found in the study's input; the study folder and input do not match")
    write_table(pa.concat_tables(tables, promote_options="permissive"), out)
    return sum(t.num_rows for t in tables)
