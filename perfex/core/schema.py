"""Column names, trait order and label grid shared by every reader, model and writer; and the targets a model predicts.

Targets: named targets, each K ordered levels (binary when K = 2) or one continuous score.

Predictions of every kind travel as one array ``outputs [N, targets, L]`` (L: the most levels of any target, 1 when
all are continuous). A level target's row holds its K level probabilities, zero-padded to L; a continuous target's
row holds its standardised value in column 0. ``Targets.scores`` turns a row into the target's score: the expected
level on its grid ``k / (K - 1)``, or the value in the label's own units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import PerfexError

AU_INTENSITY_COLUMNS: tuple[str, ...] = (
    "AU01_r", "AU02_r", "AU04_r", "AU05_r", "AU06_r", "AU07_r", "AU09_r", "AU10_r", "AU12_r",
    "AU14_r", "AU15_r", "AU17_r", "AU20_r", "AU23_r", "AU25_r", "AU26_r", "AU45_r",
)
AU_PRESENCE_COLUMNS: tuple[str, ...] = (
    "AU01_c", "AU02_c", "AU04_c", "AU05_c", "AU06_c", "AU07_c", "AU09_c", "AU10_c", "AU12_c",
    "AU14_c", "AU15_c", "AU17_c", "AU20_c", "AU23_c", "AU25_c", "AU26_c", "AU28_c", "AU45_c",
)
TRAITS: tuple[str, ...] = ("extroversion", "neuroticism", "agreeableness", "conscientiousness", "openness")
# ChaLearn First Impressions spellings of the same traits.
TRAIT_ALIASES: dict[str, str] = {"extraversion": "extroversion"}
EMOTION_COLUMNS: tuple[str, ...] = ("Happy", "Angry", "Surprise", "Sad", "Fear")
CONTEXT_COLUMNS: tuple[str, ...] = ("Word", "vi_1", "vi_2", "vi_3", "vi_4", "vi_5")

ID_COLUMN = "ID"
FILE_COLUMN = "File"
N_LEVELS = 5
LEVEL_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
FPS = 30.0

# The original code kept only clips with MIN_FRAMES < frames < MAX_FRAMES.
ORIGINAL_MIN_FRAMES = 40
ORIGINAL_MAX_FRAMES = 700

# OpenFace 2 FeatureExtraction columns that may be used as extra model inputs (--features); with the 17 AUs,
# gaze angles and head rotation make the 22 inputs of the authors' later work.
OPENFACE_GAZE_COLUMNS: tuple[str, ...] = ("gaze_angle_x", "gaze_angle_y")
OPENFACE_POSE_COLUMNS: tuple[str, ...] = ("pose_Rx", "pose_Ry", "pose_Rz")
FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "au": AU_INTENSITY_COLUMNS,
    "gaze": OPENFACE_GAZE_COLUMNS,
    "pose": OPENFACE_POSE_COLUMNS,
}


def resolve_features(spec: str) -> tuple[str, ...]:
    """Turn ``au``, ``au+gaze+pose`` or a comma-separated column list (sets may appear in it) into column names."""
    columns: list[str] = []
    for part in (p.strip() for p in re.split(r"[+,]", spec)):
        for column in FEATURE_SETS.get(part, (part,) if part else ()):
            if column not in columns:
                columns.append(column)
    if not columns:
        raise PerfexError(f"--features {spec!r} names no columns; use 'au' (default), 'au+gaze+pose' or column names")
    return tuple(columns)

DEFAULT_LEVELS = 5
CONTINUOUS = 0  # ``Target.levels`` of a continuous target
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
SPEC_HELP = ("comma-separated label columns, each NAME (five levels 0, .25, .5, .75, 1), NAME:K (K >= 2 ordered levels, "
             "integers 0..K-1 or values k/(K-1); NAME:2 is binary) or NAME:continuous (one score in its own units)")


@dataclass(frozen=True)
class Target:
    """One predicted label column: ``levels`` >= 2 ordered levels, or ``CONTINUOUS`` (0) with the training labels'
    mean (``center``) and standard deviation (``scale``) that the model's standardised output is read with."""

    name: str
    levels: int = DEFAULT_LEVELS
    center: float = 0.0
    scale: float = 1.0

    @property
    def continuous(self) -> bool:
        return self.levels == CONTINUOUS

    @property
    def width(self) -> int:
        """Logits (and output columns) of this target: one per level, or one for a continuous score."""
        return 1 if self.continuous else self.levels

    @property
    def kind(self) -> str:
        """``binary``, ``ordinal`` or ``continuous``: which metrics and baselines apply."""
        return "continuous" if self.continuous else "binary" if self.levels == 2 else "ordinal"

    @property
    def grid(self) -> np.ndarray:
        """The values of the levels, ``k / (K - 1)`` for k = 0..K-1 (empty for a continuous target)."""
        return np.arange(self.levels) / max(self.levels - 1, 1)

    def spec(self) -> str:
        return self.name if self.levels == DEFAULT_LEVELS else f"{self.name}:{'continuous' if self.continuous else self.levels}"

    def as_dict(self) -> dict:
        record = {"name": self.name, "levels": self.levels}
        return record | ({"center": self.center, "scale": self.scale} if self.continuous else {})


@dataclass(frozen=True)
class Targets:
    """The ordered targets of a model or a dataset."""

    items: tuple[Target, ...]

    def __post_init__(self) -> None:
        if not self.items:
            raise PerfexError("--targets names no label column; give at least one, e.g. --targets extroversion")
        names = [t.name for t in self.items]
        repeated = next((n for n in names if names.count(n) > 1), None)
        if repeated:
            raise PerfexError(f"--targets names {repeated!r} twice; list each label column once")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, index: int) -> Target:
        return self.items[index]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.items)

    @property
    def level_counts(self) -> tuple[int, ...]:
        """Each target's level count (0 for continuous): the model config's ``target_levels``."""
        return tuple(t.levels for t in self.items)

    @property
    def n_levels(self) -> int:
        """L, the width of ``outputs``: the most levels of any target (1 when every target is continuous)."""
        return max(t.width for t in self.items)

    @property
    def is_big_five(self) -> bool:
        """True for the default: the five traits, five levels each (models then keep their uniform layout)."""
        return self.names == TRAITS and all(t.levels == DEFAULT_LEVELS for t in self.items)

    @property
    def continuous_mask(self) -> np.ndarray:
        """One boolean per target: True where it is continuous."""
        return np.array([t.continuous for t in self.items], dtype=bool)

    @property
    def any_continuous(self) -> bool:
        return any(t.continuous for t in self.items)

    def spec(self) -> str:
        return ",".join(t.spec() for t in self.items)

    def as_list(self) -> list[dict]:
        return [t.as_dict() for t in self.items]

    @classmethod
    def from_list(cls, records: list[dict] | None) -> Targets:
        """Targets as recorded in a checkpoint (None: the Big Five, as every checkpoint before targets existed)."""
        if records is None:
            return BIG_FIVE
        return cls(tuple(Target(r["name"], int(r["levels"]), float(r.get("center", 0.0)), float(r.get("scale", 1.0)))
                         for r in records))

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """Each target's score [N, targets] from ``outputs [N, targets, L]``: the expected level value on the grid
        ``k / (K - 1)``, or a continuous target's value in its own units."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if self.is_big_five:  # the five-level case as it always was computed, so old results stay bit-identical
            return outputs @ np.arange(DEFAULT_LEVELS, dtype=np.float64) / (DEFAULT_LEVELS - 1)
        columns = [outputs[:, i, 0] * t.scale + t.center if t.continuous else outputs[:, i, : t.levels] @ t.grid
                   for i, t in enumerate(self.items)]
        return np.stack(columns, axis=1) if columns else np.zeros((len(outputs), 0))

    def predicted_levels(self, outputs: np.ndarray) -> np.ndarray:
        """The most probable level of each level target [N, targets] (0 for continuous targets)."""
        levels = np.asarray(outputs).argmax(axis=2)
        return np.where(self.continuous_mask, 0, levels)

    def with_standardisation(self, values: np.ndarray) -> Targets:
        """These targets with each continuous one's center and scale set from ``values [N, targets]`` (training labels)."""
        items = []
        for i, t in enumerate(self.items):
            if t.continuous:
                known = values[:, i][np.isfinite(values[:, i])]
                center = float(known.mean()) if len(known) else 0.0
                scale = float(known.std()) if len(known) > 1 and known.std() > 0 else 1.0
                t = Target(t.name, CONTINUOUS, center, scale)
            items.append(t)
        return Targets(tuple(items))

    def training_labels(self, levels: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """What a loss compares outputs with [N, targets]: each level target's level, each continuous target's
        standardised value."""
        return np.where(self.continuous_mask, self.standardised(scores), levels)

    def standardised(self, values: np.ndarray) -> np.ndarray:
        """Continuous targets' labels in standardised units (level targets' columns unchanged)."""
        values = np.array(values, dtype=np.float64)
        for i, t in enumerate(self.items):
            if t.continuous:
                values[:, i] = (values[:, i] - t.center) / t.scale
        return values


BIG_FIVE = Targets(tuple(Target(trait) for trait in TRAITS))


def parse_targets(spec: str | None) -> Targets:
    """``--targets`` text -> Targets; None or empty: the Big Five at five levels."""
    if spec is None or not spec.strip():
        return BIG_FIVE
    items = []
    for part in (p.strip() for p in spec.split(",")):
        name, _, kind = part.partition(":")
        name, kind = name.strip(), kind.strip().lower()
        if not _NAME.match(name):
            raise PerfexError(f"--targets {spec!r}: {part!r} is not a label column name; {SPEC_HELP}")
        if kind in ("continuous", "c"):
            items.append(Target(name, CONTINUOUS))
        elif not kind:
            items.append(Target(name))
        elif kind.isdigit() and int(kind) >= 2:
            items.append(Target(name, int(kind)))
        else:
            raise PerfexError(f"--targets {spec!r}: {part!r} has level count {kind!r}; use NAME:K with K >= 2, or "
                              "NAME:continuous")
    return Targets(tuple(items))


def chosen_targets(spec: str | None, available: Targets | None, source: str) -> Targets:
    """``--targets`` among what ``source`` predicts (``available``; kinds as there): all of them when ``spec`` is None,
    the Big Five when neither is known."""
    if spec is None:
        return available or BIG_FIVE
    asked = parse_targets(spec)
    if available is None:
        return asked
    known = {t.name: t for t in available}
    missing = [name for name in asked.names if name not in known]
    if missing:
        raise PerfexError(f"--targets names {missing[0]!r}, which {source} does not predict (it predicts "
                          f"{available.spec()}); choose among those")
    return Targets(tuple(known[name] for name in asked.names))
