"""PerFeX: Big Five personality traits from facial Action Unit time series.

The public API (``load_model``, ``create_model``, ``load_clips``, ``Model``) is imported on first use, so the
scripts, which import ``perfex.cli``, start without it.
"""

from __future__ import annotations

from typing import Any

from .core import __version__

__all__ = ["Model", "__version__", "create_model", "load_clips", "load_model"]
_API = {"Model", "create_model", "load_clips", "load_model"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'perfex' has no attribute {name!r}")
