"""Input formats: one registered ``InputFormat`` per kind of AU table. Detection, reading, provenance and every
message or ``--help`` text that lists formats derive from the registry.

Light on purpose (no numpy or pyarrow): the command line builds its help from it. Readers load on first use.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.errors import PerfexError
from ...core.schema import AU_INTENSITY_COLUMNS

if TYPE_CHECKING:
    from ...core.clips import Provenance
    from .options import ReadOptions
    from .parts import InputFile, Part

INTENSITY, PROBABILITY = "intensity-0-5", "probability-0-1"
SCALE_TITLES = {INTENSITY: "AU intensities (0-5)", PROBABILITY: "AU probabilities (0-1)"}
_AU_NUMBER = re.compile(r"^AU(\d\d)_r$")


@dataclass(frozen=True)
class Extractor:
    """What a format records: the tool that wrote it, its AU scale, and its name for each canonical AU column."""

    name: str  # stored in checkpoints' provenance, e.g. "openface2"
    title: str  # in messages, e.g. "OpenFace 2"
    scale: str
    au_names: dict[str, str]

    def native(self, column: str) -> str:
        """The file's name for canonical ``column`` (columns with no mapping are looked up as written)."""
        return self.au_names.get(column, column)

    @property
    def provenance(self) -> Provenance:
        from ...core.clips import Provenance

        return Provenance(self.name, self.scale, tuple(c for c in AU_INTENSITY_COLUMNS if c not in self.au_names))


@dataclass(frozen=True)
class InputFormat:
    """One kind of input file: how its header is recognised, what reads it, and what it records."""

    name: str  # recorded in ``Sniffed.fmt`` and cache keys, e.g. "openface"
    title: str  # in messages and --help, e.g. "OpenFace"
    extractor: Extractor
    recognise: Callable[[set[str]], bool]  # the header's stripped column names -> whether a file is of this format
    # "module:function": (source, options, keep_rows) -> Part, or for a long format
    # (source, options, chunk_rows, keep_rows) -> Iterator[Part]
    reader: str
    long: bool = False  # rows carry ID and File: many clips a file, streamed in chunks, labelled by File
    confidence: str | None = None  # what --min-confidence drops in it ("frames with ..."); None: not used
    notice: str | None = None  # said once when a file of it holds several clips

    def read(self, source: InputFile, options: ReadOptions, chunk_rows: int | None, keep_rows: bool) -> Iterator[Part]:
        """The parts of ``source`` (one for a one-file format, chunks of complete clips for a long one)."""
        module, _, name = self.reader.partition(":")
        function = getattr(importlib.import_module(module, __package__), name)
        if self.long:
            yield from function(source, options, chunk_rows, keep_rows)
        else:
            yield function(source, options, keep_rows)


FORMATS: dict[str, InputFormat] = {}
DEFAULT = "perfex"  # a table no format recognises is read as a PerFeX long CSV, whose reader names what it lacks


def register_format(fmt: InputFormat) -> InputFormat:
    """Add a format; detection tries formats in registration order, so register specific headers first."""
    if fmt.name in FORMATS:
        raise PerfexError(f"input format {fmt.name!r} is registered twice; give the new one another name")
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str | None) -> InputFormat:
    """The registered format ``name`` (None: the default, PerFeX long)."""
    return FORMATS[name or DEFAULT]


def is_long(name: str | None) -> bool:
    """Whether ``name`` is a registered long format (ID and File columns); unrecognised (None): False."""
    return name in FORMATS and FORMATS[name].long


def format_of(header: Iterable[str]) -> str | None:
    """The name of the format a header belongs to, or None when it is no AU table (a labels table, results...)."""
    names = {name.strip() for name in header}
    return next((fmt.name for fmt in FORMATS.values() if fmt.recognise(names)), None)


def titles(last: str = "or", long: bool | None = None) -> str:
    """'PerFeX long CSV, OpenFace, py-feat or LibreFace': the registered formats (``long`` True/False: only those)."""
    shown = [f.title for f in sorted(FORMATS.values(), key=lambda f: not f.long) if long is None or f.long == long]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} {last} {shown[-1]}"


def extractor_title(name: str) -> str:
    """'OpenFace 2' for 'openface2' (unknown names as given)."""
    return next((f.extractor.title for f in FORMATS.values() if f.extractor.name == name), name)


def confidence_help() -> str:
    """What --min-confidence drops, per format that uses it."""
    return "; ".join(f"{f.title}: {f.confidence}" for f in FORMATS.values() if f.confidence)


def _numbered(template: str, numbers: Iterable[int]) -> dict[str, str]:
    wanted = {int(_AU_NUMBER.match(c).group(1)): c for c in AU_INTENSITY_COLUMNS}
    return {wanted[n]: template.format(n=n) for n in numbers if n in wanted}


def _has(*needed: str, any_of: Iterable[str] = (), matching: str | None = None) -> Callable[[set[str]], bool]:
    """A header test: every name in ``needed``, one of ``any_of`` (when given), one name matching ``matching``."""
    any_of = set(any_of)
    pattern = re.compile(matching) if matching else None

    def recognise(names: set[str]) -> bool:
        return (set(needed) <= names and (not any_of or bool(names & any_of))
                and (pattern is None or any(pattern.fullmatch(n) for n in names)))
    return recognise


OPENFACE2 = Extractor("openface2", "OpenFace 2", INTENSITY, {c: c for c in AU_INTENSITY_COLUMNS})
register_format(InputFormat(
    "openface", "OpenFace", OPENFACE2, _has("frame", any_of=("success", "confidence")), ".parsers.openface:read_openface",
    confidence="frames with success 0 or confidence below it",
    notice=("notice: OpenFace face_id values are tracker slots, not identities (a slot is reused when a track is lost), "
            "so a '#face<k>' clip may hold more than one person")))
register_format(InputFormat(
    "py-feat", "py-feat", Extractor("py-feat", "py-feat", PROBABILITY, _numbered(
        "AU{n:02d}", (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43))),
    _has("frame", "FaceScore"), ".parsers.pyfeat:read_pyfeat", confidence="faces with FaceScore below it"))
register_format(InputFormat(
    "libreface", "LibreFace", Extractor("libreface", "LibreFace", INTENSITY, _numbered(
        "au_{n}_intensity", (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26))),
    _has("frame_idx", matching=r"au_\d+_intensity"), ".parsers.libreface:read_libreface"))
register_format(InputFormat(
    DEFAULT, "PerFeX long CSV", OPENFACE2, _has(matching=r"AU\d\d_[rc]"), ".parsers.perfex_long:read_perfex", long=True))

