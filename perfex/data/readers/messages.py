"""Message helpers shared by the readers: short column lists and the error a tolerant deploy may record."""

from __future__ import annotations

from collections.abc import Sequence

from ...core.errors import PerfexError

SHOWN_NAMES = 6


class UnreadableFile(PerfexError):
    """A file that cannot be read at all (empty, binary, not UTF-8, bad gzip, truncated); deploy may record it."""


def name_list(names: Sequence[str], shown: int = SHOWN_NAMES) -> str:
    """'a, b, c, ... (+420 more)': the first few names and a count, so an error stays on one short line."""
    names = [str(name).strip() for name in names]
    head = ", ".join(names[:shown])
    return head if len(names) <= shown else f"{head}, ... (+{len(names) - shown} more)"


def row_label(first_row: int):
    """A function naming data row ``r`` of a block that starts at data row ``first_row``."""
    return lambda row: f"row {first_row + row + 1} (file line {first_row + row + 2})"
