"""AU-trait analysis: per-clip AU statistics correlated with trait labels or predictions (au_analysis.py)."""
