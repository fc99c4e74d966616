"""Which extractor and AU scale inputs hold, and the check that refuses weights trained on another (formats.py
declares what each input format records)."""

from __future__ import annotations

import re

from ...core.clips import ClipSet, Provenance
from ...core.errors import PerfexError
from .formats import INTENSITY, PROBABILITY, SCALE_TITLES, Extractor, extractor_title

__all__ = ["INTENSITY", "PROBABILITY", "Extractor", "check_compatible", "describe", "looks_like_au_table"]

_AU_LIKE = re.compile(r"^(AU\d+(_[rc])?|au_\d+(_intensity)?)$")


def looks_like_au_table(header: list[str]) -> bool:
    """True when a header names AU columns, so a file that fails to parse is not mistaken for a side table."""
    return any(_AU_LIKE.match(name.strip()) for name in header)


def describe(extractor: str, scale: str) -> str:
    return f"{extractor_title(extractor)} {SCALE_TITLES.get(scale, scale)}"


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
            f"{extractor_title(want[0])} output or pass --allow-extractor-mismatch to run anyway"
        )
