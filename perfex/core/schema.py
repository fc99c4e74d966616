"""Column names, trait order and label grid shared by every reader, model and writer."""

import re

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
        from .errors import PerfexError

        raise PerfexError(f"--features {spec!r} names no columns; use 'au' (default), 'au+gaze+pose' or column names")
    return tuple(columns)
