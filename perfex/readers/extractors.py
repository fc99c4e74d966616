"""What each AU extractor writes: how to recognise its header, its AU names and scale, and the mismatch check."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..clips import ClipSet, Provenance
from ..errors import PerfexError
from ..schema import AU_INTENSITY_COLUMNS

PERFEX, OPENFACE, PYFEAT, LIBREFACE = "perfex", "openface", "py-feat", "libreface"
INTENSITY, PROBABILITY = "intensity-0-5", "probability-0-1"
_SCALE_WORDS = {INTENSITY: "AU intensities (0-5)", PROBABILITY: "AU probabilities (0-1)"}
_EXTRACTOR_WORDS = {"openface2": "OpenFace 2", "py-feat": "py-feat", "libreface": "LibreFace"}
_AU_NUMBER = re.compile(r"^AU(\d\d)_r$")
_PERFEX_AU = re.compile(r"^AU\d\d_[rc]$")
_AU_LIKE = re.compile(r"^(AU\d+(_[rc])?|au_\d+(_intensity)?)$")


@dataclass(frozen=True)
class Extractor:
    """One input format: the tool that wrote it, its AU scale and the name of each canonical AU in its files."""

    fmt: str
    extractor: str
    scale: str
    au_names: dict[str, str]

    def native(self, column: str) -> str:
        """The file's name for canonical ``column`` (columns with no mapping are looked up as written)."""
        return self.au_names.get(column, column)

    @property
    def provenance(self) -> Provenance:
        missing = tuple(c for c in AU_INTENSITY_COLUMNS if c not in self.au_names)
        return Provenance(self.extractor, self.scale, missing)


def _numbered(template: str, numbers: Iterable[int]) -> dict[str, str]:
    wanted = {int(_AU_NUMBER.match(c).group(1)): c for c in AU_INTENSITY_COLUMNS}
    return {wanted[n]: template.format(n=n) for n in numbers if n in wanted}


_SAME = {c: c for c in AU_INTENSITY_COLUMNS}
EXTRACTORS = {
    PERFEX: Extractor(PERFEX, "openface2", INTENSITY, _SAME),
    OPENFACE: Extractor(OPENFACE, "openface2", INTENSITY, _SAME),
    PYFEAT: Extractor(PYFEAT, "py-feat", PROBABILITY,
                      _numbered("AU{n:02d}", (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43))),
    LIBREFACE: Extractor(LIBREFACE, "libreface", INTENSITY,
                         _numbered("au_{n}_intensity", (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26))),
}


def format_of(header: list[str]) -> str | None:
    """The input format a header belongs to, or None when it is no AU table (a labels table, results...)."""
    names = {name.strip() for name in header}
    if "frame" in names and names & {"success", "confidence"}:
        return OPENFACE
    if "frame" in names and "FaceScore" in names:
        return PYFEAT
    if "frame_idx" in names and any(re.fullmatch(r"au_\d+_intensity", n) for n in names):
        return LIBREFACE
    if any(_PERFEX_AU.match(n) for n in names):
        return PERFEX
    return None


def looks_like_au_table(header: list[str]) -> bool:
    """True when a header names AU columns, so a file that fails to parse is not mistaken for a side table."""
    return any(_AU_LIKE.match(name.strip()) for name in header)


def describe(extractor: str, scale: str) -> str:
    return f"{_EXTRACTOR_WORDS.get(extractor, extractor)} {_SCALE_WORDS.get(scale, scale)}"


def check_compatible(trained: dict, clips: ClipSet | Provenance, allow_mismatch: bool = False, where: str = "") -> None:
    """Refuse inputs from another extractor or scale than the weights were trained on (legacy weights: OpenFace 2)."""
    seen = clips.provenance if isinstance(clips, ClipSet) else clips
    if seen is None or allow_mismatch:
        return
    want = (trained.get("extractor") or "openface2", trained.get("scale") or INTENSITY)
    if (seen.extractor, seen.scale) != want:
        raise PerfexError(
            f"the weights were trained on {describe(*want)} but {where or 'the input'} holds "
            f"{describe(seen.extractor, seen.scale)}, which mean nothing to them; deploy on "
            f"{_EXTRACTOR_WORDS.get(want[0], want[0])} output or pass --allow-extractor-mismatch to run anyway"
        )
