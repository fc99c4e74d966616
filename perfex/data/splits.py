"""Train/validation/test splits that keep every source video (and its augmented copies) on one side."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from ..core.clips import ClipSet
from ..core.errors import PerfexError
from ..core.tables import read_json

SPLIT_NAMES = ("train", "val", "test")
# First Impressions clip names: 11-character YouTube id, then a 3-digit segment number.
_YOUTUBE_NAME = re.compile(r"^([A-Za-z0-9_-]{11})\.\d{3}(?:\.\w+)?$")


def source_video(file_name: str) -> str:
    """The YouTube id of a First Impressions clip name (``XQ3do4LDFv8.000.mp4``), else the name itself."""
    match = _YOUTUBE_NAME.match(str(file_name))
    return match.group(1) if match else str(file_name)


def group_keys(clips: ClipSet) -> np.ndarray:
    """Source-video key of every clip; augmented copies take the key of their source clip."""
    keys = np.array([source_video(f) for f in clips.files], dtype=object)
    augmented = clips.augmentation != "none"
    if augmented.any():
        key_of_id = {i: k for i, k, a in zip(clips.ids.tolist(), keys, augmented) if not a}
        for row in np.flatnonzero(augmented):
            keys[row] = key_of_id.get(clips.source_ids[row], keys[row])
    return keys


def make_split(clips: ClipSet, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0) -> dict:
    """Assign whole source videos to train/val/test at random (seeded); returns a JSON-ready manifest."""
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise PerfexError(f"split fractions {fractions} must be three non-negative numbers summing to 1, e.g. 0.7,0.15,0.15")
    groups = np.array(sorted(set(group_keys(clips))), dtype=object)
    if len(groups) < 3 and fractions[1] > 0 and fractions[2] > 0:
        raise PerfexError(f"only {len(groups)} source video(s) in the data: a train/validation/test split needs at least 3; "
                         "add data, or pass --test-fraction 0 to hold out no test videos")
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = max(1, round(fractions[1] * len(groups))) if fractions[1] > 0 else 0
    n_test = max(1, round(fractions[2] * len(groups))) if fractions[2] > 0 else 0
    test, val, train = np.split(groups[order], [n_test, n_test + n_val])
    return {
        "format": "perfex-split",
        "version": 1,
        "group_by": "source video (YouTube id of the First Impressions name, else File)",
        "seed": seed,
        "fractions": list(fractions),
        "train": sorted(train.tolist()),
        "val": sorted(val.tolist()),
        "test": sorted(test.tolist()),
    }


def manifest_hash(manifest: dict) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def save_manifest(manifest: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1) + "\n")


def load_manifest(path: str | Path) -> dict:
    manifest = read_json(path, "train writes one as split.json in its run directory", "split manifest")
    if not isinstance(manifest, dict) or manifest.get("format") != "perfex-split" or not all(isinstance(manifest.get(s), list) for s in SPLIT_NAMES):
        raise PerfexError(f"{path} is not a PerFeX split manifest (needs format 'perfex-split' and train/val/test lists)")
    return manifest


def split_indices(clips: ClipSet, manifest: dict) -> dict[str, np.ndarray]:
    """Clip indices per split; a clip whose source video the manifest does not know is an error."""
    keys = group_keys(clips)
    side = {key: name for name in SPLIT_NAMES for key in manifest[name]}
    unknown = sorted({k for k in keys if k not in side})
    if unknown:
        raise PerfexError(
            f"{len(unknown)} source video(s) of the data are not in the split manifest (e.g. {unknown[0]!r}); "
            "use the manifest made for this data or let train make a new one (omit --split)"
        )
    labels = np.array([side[k] for k in keys], dtype=object)
    return {name: np.flatnonzero(labels == name) for name in SPLIT_NAMES}


def check_disjoint(clips: ClipSet, parts: dict[str, np.ndarray]) -> None:
    """Raise if any source video appears in more than one split."""
    keys = group_keys(clips)
    seen: dict[str, str] = {}
    for name, index in parts.items():
        for key in set(keys[index]):
            if seen.setdefault(key, name) != name:
                raise PerfexError(f"source video {key!r} is in both the {seen[key]} and the {name} split")
