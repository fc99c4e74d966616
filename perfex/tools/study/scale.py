"""Rating scales of a study sheet and the standard one-line trait descriptions shown to raters."""

from __future__ import annotations

import numpy as np

from ...core.errors import PerfexError
from ...core.schema import LEVEL_GRID, Target, Targets

SCALES: dict[str, tuple[float, ...]] = {
    "grid": LEVEL_GRID,
    "likert5": (1, 2, 3, 4, 5),
    "likert7": (1, 2, 3, 4, 5, 6, 7),
}
TRAIT_DESCRIPTIONS: dict[str, str] = {
    "extroversion": "Outgoing, talkative and energetic; seeks the company of others.",
    "neuroticism": "Prone to negative feelings: anxious, tense, moody, easily upset.",
    "agreeableness": "Friendly, warm and cooperative; considerate of others.",
    "conscientiousness": "Organised, careful and dependable; self-disciplined.",
    "openness": "Curious and imaginative; open to new ideas and experiences.",
}
_END_LABELS = ("very low", "very high")


def scale_values(scale: str, target: Target | None = None) -> tuple[float, ...]:
    """The answers a sheet on ``scale`` may hold (for ``target`` on the grid scale: its own levels k/(K-1))."""
    if scale not in SCALES:
        raise PerfexError(f"unknown rating scale {scale!r}; use one of {', '.join(SCALES)}")
    if scale == "grid" and target is not None:
        return tuple(float(v) for v in target.grid)
    return SCALES[scale]


def to_unit(values: np.ndarray, scale: str) -> np.ndarray:
    """Answers on ``scale`` -> scores in [0, 1] (lowest answer 0, highest 1, evenly spaced; any target's grid too)."""
    allowed = scale_values(scale)
    return (np.asarray(values, dtype=np.float64) - allowed[0]) / (allowed[-1] - allowed[0])


def scale_labels(scale: str, target: Target | None = None) -> list[str]:
    """Text under each answer of the rating page: the value, with the ends named."""
    allowed = scale_values(scale, target)
    labels = [f"{v:g}" for v in allowed]
    labels[0], labels[-1] = f"{labels[0]} ({_END_LABELS[0]})", f"{labels[-1]} ({_END_LABELS[1]})"
    return labels


def on_scale(value: float, scale: str, target: Target | None = None) -> bool:
    """Whether ``value`` is one of the scale's answers (spreadsheets may write 0.50 or 3.0)."""
    return any(abs(value - allowed) < 1e-9 for allowed in scale_values(scale, target))


def describe(target: Target) -> str:
    """The one line shown to raters about a target: a trait's standard description, else its levels."""
    levels = "yes (1) or no (0)" if target.levels == 2 else f"{target.levels} ordered levels, low to high"
    return TRAIT_DESCRIPTIONS.get(target.name, f"Rate {target.name}: {levels}.")


def study_targets(manifest: dict) -> Targets:
    """The targets a study's raters answer, as select recorded them (a study without ``targets``: the Big Five)."""
    return Targets.from_list(manifest.get("targets"))
