"""ClipSet: every clip of a dataset as one float32 frame matrix plus offsets (no per-clip objects)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .schema import AU_INTENSITY_COLUMNS, BIG_FIVE, Targets


@dataclass(frozen=True)
class Provenance:
    """Which AU extractor wrote the inputs, on which scale, and which of the 17 canonical AUs it lacks."""

    extractor: str
    scale: str
    missing_aus: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready form (for checkpoint metadata)."""
        return {"extractor": self.extractor, "scale": self.scale, "missing_aus": list(self.missing_aus)}


@dataclass
class ClipSet:
    """Clips stored contiguously: clip ``i`` is ``features[offsets[i]:offsets[i+1]]``.

    ``targets`` names the label columns; ``levels [N, targets]`` holds each level target's class 0..K-1 (``-1`` where
    a clip has no label; 0 for a labelled continuous target) and ``scores [N, targets]`` the label values (on the level
    grid, or a continuous target's value in its own units; NaN where unlabelled). ``times`` are seconds since clip start.
    """

    ids: np.ndarray
    files: np.ndarray
    offsets: np.ndarray
    features: np.ndarray
    times: np.ndarray
    feature_names: tuple[str, ...] = AU_INTENSITY_COLUMNS
    scores: np.ndarray | None = None
    levels: np.ndarray | None = None
    source_ids: np.ndarray | None = None
    augmentation: np.ndarray | None = None
    dropped_frames: np.ndarray | None = None
    label_binning: str | None = None
    origin: list[str] = field(default_factory=list)
    provenance: Provenance | None = None
    targets: Targets = BIG_FIVE

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.source_ids is None:
            self.source_ids = self.ids.copy()
        if self.augmentation is None:
            self.augmentation = np.full(n, "none", dtype=object)
        if self.dropped_frames is None:
            self.dropped_frames = np.zeros(n, dtype=np.int64)
        if len(self.offsets) != n + 1 or len(self.files) != n:
            raise ValueError("ClipSet: offsets must have n_clips + 1 entries and files n_clips entries")
        if self.features.shape[0] != self.offsets[-1] or self.times.shape[0] != self.offsets[-1]:
            raise ValueError("ClipSet: features and times must have offsets[-1] rows")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        """Number of frames of each clip."""
        return np.diff(self.offsets)

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    @property
    def has_labels(self) -> bool:
        """True when every clip carries a label for every target."""
        return self.levels is not None and len(self) > 0 and bool((self.levels >= 0).all())

    def clip(self, i: int) -> np.ndarray:
        """Frames of clip ``i`` as a [T, F] view."""
        return self.features[self.offsets[i] : self.offsets[i + 1]]

    def clip_times(self, i: int) -> np.ndarray:
        return self.times[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, index: np.ndarray | list[int]) -> ClipSet:
        """A new ClipSet holding the clips at ``index`` (in that order); frames are copied once."""
        index = np.asarray(index, dtype=np.int64)
        starts, ends = self.offsets[index], self.offsets[index + 1]
        lengths = ends - starts
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        rows = _ranges(starts, lengths)
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return replace(
            self,
            ids=self.ids[index],
            files=self.files[index],
            offsets=offsets,
            features=self.features[rows],
            times=self.times[rows],
            scores=pick(self.scores),
            levels=pick(self.levels),
            source_ids=pick(self.source_ids),
            augmentation=pick(self.augmentation),
            dropped_frames=pick(self.dropped_frames),
            origin=list(self.origin),
        )

    def summary(self) -> str:
        lengths = self.lengths
        if len(self) == 0:
            return "0 clips"
        return (
            f"{len(self)} clips, {int(lengths.sum())} frames "
            f"(min {int(lengths.min())}, median {int(np.median(lengths))}, max {int(lengths.max())}), "
            f"{self.n_features} features"
        )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each start/length pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    clip_of_row = np.repeat(np.arange(len(lengths)), lengths)
    first_row = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=first_row[1:])
    return starts[clip_of_row] + (np.arange(total) - first_row[clip_of_row])


def concat_clipsets(parts: list[ClipSet]) -> ClipSet:
    """Join ClipSets with the same features into one (ids must stay unique across parts)."""
    if not parts:
        raise ValueError("concat_clipsets needs at least one ClipSet")
    first = parts[0]
    for part in parts[1:]:
        if part.targets.names != first.targets.names:
            raise ValueError("cannot join clip sets labelled with different targets")
        if part.feature_names != first.feature_names:
            raise ValueError("cannot join clip sets with different feature columns")
        if part.provenance != first.provenance and None not in (part.provenance, first.provenance):
            raise ValueError("cannot join clip sets read from different AU extractors")
    lengths = np.concatenate([p.lengths for p in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])

    def cat(name: str, fill: float | int | None) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in parts]
        if all(a is None for a in arrays):
            return None
        return np.concatenate(
            [a if a is not None else np.full((len(p), len(first.targets)), fill) for a, p in zip(arrays, parts)]
        )

    ids = np.concatenate([p.ids for p in parts])
    if ids.dtype.kind in "iu" and not all(p.ids.dtype.kind in "iu" for p in parts):
        ids = ids.astype(object)
    binnings = {p.label_binning for p in parts if p.label_binning is not None}
    return ClipSet(
        ids=ids,
        files=np.concatenate([p.files for p in parts]),
        offsets=offsets,
        features=np.concatenate([p.features for p in parts]),
        times=np.concatenate([p.times for p in parts]),
        feature_names=first.feature_names,
        scores=cat("scores", np.nan),
        levels=cat("levels", -1),
        source_ids=np.concatenate([p.source_ids for p in parts]),
        augmentation=np.concatenate([p.augmentation for p in parts]),
        dropped_frames=np.concatenate([p.dropped_frames for p in parts]),
        label_binning=",".join(sorted(binnings)) if binnings else None,
        origin=[o for p in parts for o in p.origin],
        provenance=next((p.provenance for p in parts if p.provenance is not None), None),
        targets=first.targets,
    )


def empty_levels(n: int, n_targets: int = len(BIG_FIVE)) -> np.ndarray:
    """A [n, targets] level array meaning 'unlabeled'."""
    return np.full((n, n_targets), -1, dtype=np.int64)


