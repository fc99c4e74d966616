"""First look at a file: its header line, delimiter and format, with a one-line reason when it cannot be read."""

from __future__ import annotations

import codecs
import csv
import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

from .formats import FORMATS, Extractor, InputFormat, format_of, titles
from .messages import UnreadableFile

SNIFF_BYTES = 1 << 16
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


@dataclass(frozen=True)
class Sniffed:
    """A file's header as written (OpenFace names keep their leading space), delimiter and format (None: no AU table)."""

    header: list[str]
    delimiter: str
    fmt: str | None

    @property
    def format(self) -> InputFormat | None:
        return FORMATS.get(self.fmt)

    @property
    def extractor(self) -> Extractor | None:
        return self.format.extractor if self.format else None

    def raw_names(self) -> dict[str, str]:
        """Stripped column name -> name as written (the first of duplicates wins)."""
        raw: dict[str, str] = {}
        for name in self.header:
            raw.setdefault(name.strip(), name)
        return raw


def is_gzip(path: Path) -> bool:
    return path.name.lower().endswith(".gz")


def head(path: Path) -> bytes:
    """The first 64 KB of the (decompressed) file, extended to the end of the first line if that is longer."""
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rb") as handle:
            start = handle.read(SNIFF_BYTES)
            return start if b"\n" in start else start + handle.readline()
    except (OSError, EOFError, zlib.error) as err:
        raise UnreadableFile(f"{path} could not be read ({err}); pass a plain .csv or a valid gzip .csv.gz file") from None


def _text(path: Path, start: bytes) -> str:
    if b"\x00" in start:
        raise UnreadableFile(f"{path} is not a CSV text file (it holds binary data); "
                             f"pass a {titles()} .csv or .csv.gz file")
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(start, final=False)
    except UnicodeDecodeError as err:
        raise UnreadableFile(f"{path} is not UTF-8 text (byte {err.start}); re-save it as UTF-8") from None


def sniff(path: str | Path) -> Sniffed:
    """Header, delimiter and format of ``path``; UnreadableFile when it is empty, binary, not UTF-8 or bad gzip."""
    path = Path(path)
    start = head(path)
    if not start.strip():
        raise UnreadableFile(f"{path} is empty; pass a CSV with a header line and one row per frame")
    line = _text(path, start).split("\n", 1)[0].rstrip("\r")
    delimiter = ","
    if "," not in line:
        delimiter = next((d for d in (";", "\t") if d in line), ",")
    header = next(csv.reader([line], delimiter=delimiter))
    return Sniffed(header, delimiter, format_of(header))


def detect_format(path: str | Path) -> str | None:
    """The name of the registered format of ``path`` ('perfex', 'openface', ...), or None for a CSV that is no AU table."""
    return sniff(path).fmt
