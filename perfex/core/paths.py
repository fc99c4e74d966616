"""The project folder and the paths checkpoints store relative to it (so a checkpoint works from any clone)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # perfex/core/paths.py -> the checkout
DATA_DIR = PROJECT_ROOT / "data"
WEIGHTS_DIR = PROJECT_ROOT / "weights"


def portable_path(path: str | Path) -> str:
    """A path inside the project folder relative to it; any other path absolute."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(resolved)


def locate(path: str | Path) -> Path:
    """A stored path: as given if it exists or is absolute, else relative to the project folder."""
    path = Path(path)
    return path if path.exists() or path.is_absolute() else PROJECT_ROOT / path
