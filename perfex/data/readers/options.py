"""ReadOptions: everything a read depends on, checked once when it is made."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import PerfexError
from ...core.schema import AU_INTENSITY_COLUMNS, BIG_FIVE, Targets, resolve_features

NAN_POLICIES = ("error", "drop-frames", "interpolate")
NORMALIZATIONS = ("global", "clip-median")


@dataclass(frozen=True)
class ReadOptions:
    """How to read inputs.

    ``features`` is a spec string ('au', 'au+gaze+pose', 'au,pose_Rx'; AUs an extractor lacks are left out and
    recorded) or an exact tuple of canonical column names (a checkpoint's; every one is required).
    ``expect`` is a checkpoint's provenance ({'extractor': ..., 'scale': ...}); other inputs are refused unless
    ``allow_extractor_mismatch``. ``tolerate_unreadable`` turns files that cannot be read into records.
    ``targets`` are the label columns read (from PerFeX files and labels tables) into ``scores``.
    """

    features: str | Sequence[str] = "au"
    nan_policy: str = "error"
    min_confidence: float = 0.8
    normalize: str = "global"
    cache_dir: str | Path | None = None
    expect: dict | None = None
    allow_extractor_mismatch: bool = False
    tolerate_unreadable: bool = False
    targets: Targets = BIG_FIVE
    notify: Callable[[str], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.nan_policy not in NAN_POLICIES:
            raise PerfexError(f"--nan {self.nan_policy!r} is not one of {', '.join(NAN_POLICIES)}")
        if self.normalize not in NORMALIZATIONS:
            raise PerfexError(f"--normalize {self.normalize!r} is not one of {', '.join(NORMALIZATIONS)}")
        if isinstance(self.min_confidence, bool) or not isinstance(self.min_confidence, (int, float)) \
                or not 0 <= self.min_confidence <= 1:
            raise PerfexError(f"--min-confidence {self.min_confidence} must be between 0 and 1 (default 0.8)")
        object.__setattr__(self, "min_confidence", float(self.min_confidence))
        if not isinstance(self.features, str):
            object.__setattr__(self, "features", tuple(self.features))
        if not self.columns:
            raise PerfexError("no feature columns requested; use the 17 AU intensity columns (--features au)")

    @property
    def columns(self) -> tuple[str, ...]:
        """The canonical columns asked for (a spec resolved; a tuple as given)."""
        return resolve_features(self.features) if isinstance(self.features, str) else self.features

    @property
    def flexible(self) -> bool:
        """True when AUs an extractor does not provide may be left out (a spec, not a checkpoint's exact list)."""
        return isinstance(self.features, str)

    def columns_for(self, provides: Sequence[str] | None) -> tuple[str, ...]:
        """The columns to read from a source whose extractor provides the canonical AUs ``provides``."""
        if not self.flexible or provides is None:
            return self.columns
        return tuple(c for c in self.columns if c not in AU_INTENSITY_COLUMNS or c in provides)
