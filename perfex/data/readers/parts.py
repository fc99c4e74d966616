"""The small records passed between the readers and their callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ...core.clips import ClipSet
from .formats import InputFormat, is_long
from .sniff import Sniffed


@dataclass(frozen=True)
class InputFile:
    """One input file: its clip name (unique within a folder), other names a labels table may use, and its sniff
    (None with ``error`` set when even the header could not be read)."""

    path: Path
    clip_name: str
    aliases: tuple[str, ...] = ()
    sniffed: Sniffed | None = None
    error: str | None = None

    @property
    def format(self) -> InputFormat | None:
        """The registered format its header was recognised as (None: unreadable, or no format recognised it)."""
        return self.sniffed.format if self.sniffed is not None else None

    @property
    def long(self) -> bool:
        """Whether it is a recognised long table (ID and File columns: many clips, labelled by File)."""
        return self.sniffed is not None and is_long(self.sniffed.fmt)


@dataclass
class RowBlock:
    """Input rows as written (every column, names stripped, an ID column first for extractor files) and the clip id
    of each row; what deploy's per-frame output writes back."""

    table: pa.Table
    row_ids: np.ndarray


@dataclass(frozen=True)
class Unreadable:
    """An input file that could not be read: the clip id it would have had, the file and why."""

    id: str
    file: str
    reason: str


@dataclass
class Part:
    """What a reader yields: complete clips, optionally their input rows, and notices for the user."""

    clips: ClipSet
    rows: RowBlock | None = None
    notices: tuple[str, ...] = ()


@dataclass
class ClipChunk:
    """One streamed chunk: complete clips, files that could not be read (when tolerated) and the rows of its clips
    (when asked for, for per-frame output)."""

    clips: ClipSet
    unreadable: list[Unreadable] = field(default_factory=list)
    rows: list[RowBlock] = field(default_factory=list)
