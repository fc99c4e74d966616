"""AU-trait analysis: per-clip AU statistics correlated with trait labels or predictions."""

from .clip_stats import STATISTICS, clip_au_statistics
from .correlate import correlation_table

__all__ = ["STATISTICS", "clip_au_statistics", "correlation_table"]
