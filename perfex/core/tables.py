"""Raw table helpers: read a whole CSV as Arrow, write one atomically, group rows by clip in linear time."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .errors import PerfexError

_UMASK = os.umask(0)
os.umask(_UMASK)


def group_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group row numbers by clip id in O(n log n) once: (ids in order of first appearance, rows, offsets).

    Rows of clip ``k`` are ``rows[offsets[k]:offsets[k+1]]``, in file order.
    """
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    appearance = np.argsort(first, kind="stable")
    rank = np.empty_like(appearance)
    rank[appearance] = np.arange(len(appearance))
    clip_of_row = rank[inverse.ravel()]
    rows = np.argsort(clip_of_row, kind="stable")
    offsets = np.zeros(len(unique) + 1, dtype=np.int64)
    np.cumsum(np.bincount(clip_of_row, minlength=len(unique)), out=offsets[1:])
    return unique[appearance], rows, offsets


def read_table(path: Path) -> pa.Table:
    """Every column of a CSV or CSV.GZ file as an Arrow table (for tools that must carry all columns)."""
    try:
        return pacsv.read_csv(path)
    except FileNotFoundError:
        raise PerfexError(f"{path} does not exist; check the path given to --data") from None
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PerfexError(f"{path} could not be read as CSV ({first_line}); pass a PerFeX CSV or CSV.GZ file") from None


def read_json(path: str | Path, missing_hint: str, what: str) -> object:
    """Parse a JSON file; a missing or malformed file is a one-line error naming ``what`` it should have been."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PerfexError(f"{what} {path} not found; {missing_hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PerfexError(f"{what} {path} is not valid JSON ({err})") from None


def refuse_overwrite(path: Path, force: bool) -> None:
    """Stop before any work when ``path`` exists and ``--force`` was not given."""
    if Path(path).exists() and not force:
        raise PerfexError(f"{path} already exists; pass --force to overwrite it or choose another --out")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; it replaces ``path`` only if the block finishes without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the final file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_table(table: pa.Table, path: Path) -> None:
    """Write CSV atomically (gzip when the name ends in .gz)."""
    with atomic_output(path) as tmp:
        if Path(path).name.endswith(".gz"):
            with pa.CompressedOutputStream(str(tmp), "gzip") as stream:
                pacsv.write_csv(table, stream)
        else:
            pacsv.write_csv(table, tmp)
