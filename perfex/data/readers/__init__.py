"""Input readers: one module per format (registered in formats.py) behind one entry.

The names below load on first use, so the command line can read the format registry (``perfex.data.readers.formats``)
for its help texts without importing numpy or pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Provenance": "...core.clips", "resolve_features": "...core.schema",
    "INTENSITY": ".formats", "PROBABILITY": ".formats", "FORMATS": ".formats", "InputFormat": ".formats",
    "register_format": ".formats", "check_compatible": ".extractors",
    "InputScan": ".inputs", "expand_inputs": ".inputs", "find_inputs": ".inputs",
    "iter_clip_chunks": ".loading", "load_clips": ".loading", "read": ".loading",
    "UnreadableFile": ".messages", "name_list": ".messages",
    "center_on_clip_median": ".normalize", "clip_medians": ".normalize",
    "NAN_POLICIES": ".options", "NORMALIZATIONS": ".options", "ReadOptions": ".options",
    "ClipChunk": ".parts", "InputFile": ".parts", "RowBlock": ".parts", "Unreadable": ".parts",
    "detect_format": ".sniff",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
