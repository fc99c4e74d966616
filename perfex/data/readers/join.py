"""Labels joined onto clips, clip ids checked across files, and scores binned into levels."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from ...core.clips import ClipSet, concat_clipsets, empty_levels
from ...core.errors import PerfexError
from ...core.schema import BIG_FIVE, Targets
from ..labels import BINNINGS, on_grid, read_labels, scores_to_levels, strip_video_extension
from .parts import InputFile


class LabelTable:
    """A labels table looked up by video name, with or without its extension, holding a column per target."""

    def __init__(self, path: str | Path, targets: Targets = BIG_FIVE):
        table = read_labels(path, targets)
        self.path = Path(path)
        self.targets = targets
        self.values = table.to_numpy(dtype=np.float64)
        self.names = table.index.tolist()
        self.position = {strip_video_extension(n): i for i, n in enumerate(self.names)} | {n: i for i, n in enumerate(self.names)}

    def _find(self, keys: list[str]) -> int | None:
        for key in keys:
            i = self.position.get(key, self.position.get(strip_video_extension(key)))
            if i is not None:
                return i
        return None

    def fill(self, clips: ClipSet, source: InputFile, present: Collection[str] = ()) -> ClipSet:
        """Give clips the table's labels: all of them to unlabelled clips, and those of the targets whose columns the
        file lacks (``present`` names the ones it has) to every clip. PerFeX clips are found by File; extractor clips
        by clip id, or by the file's other names when it holds one face (they also take the table's video name as File)."""
        perfex = source.long
        absent = np.array([name not in present for name in self.targets.names])
        unlabelled = np.isnan(clips.scores).all(axis=1)
        for k in np.flatnonzero(unlabelled | absent.any()):
            keys = [str(clips.files[k])] if perfex else [str(clips.ids[k]), *(source.aliases if len(clips) == 1 else ())]
            i = self._find(keys)
            if i is not None:
                cells = np.ones_like(absent) if unlabelled[k] else absent
                clips.scores[k, cells] = self.values[i, cells]
                if not perfex:
                    clips.files[k] = self.names[i]
                self._check_complete(clips, k, i, cells)
        return clips

    def _check_complete(self, clips: ClipSet, k: int, i: int, cells: np.ndarray) -> None:
        """A clip left partly labelled by an incomplete row of the table is an error naming that row (the Big Five
        leave this to the binning's check, as they always did)."""
        gaps = np.isnan(clips.scores[k]) & cells
        if self.targets.is_big_five or not gaps.any() or np.isnan(clips.scores[k]).all():
            return
        row = f"row {i + 1} (file line {i + 2})" if self.path.suffix != ".pkl" else "the entry"
        raise PerfexError(
            f"labels file {self.path}: {row} of video {self.names[i]!r} has no {self.targets.names[int(np.argmax(gaps))]!r} "
            f"label while clip {clips.ids[k]} has its other --targets labels; fill that cell or leave all of the "
            "clip's target labels empty"
        )


def check_binning(label_binning: str | None) -> None:
    if label_binning is not None and label_binning not in BINNINGS and not label_binning.startswith("quantile:"):
        raise PerfexError(f"unknown --label-binning {label_binning!r}; use one of round, floor, quantile")


def check_new_ids(clips: ClipSet, path: Path, seen: dict) -> None:
    """Clip ids must be unique across input files; ``seen`` maps ids already read to their file."""
    for clip_id in clips.ids.tolist():
        if clip_id in seen:
            raise PerfexError(f"clip ID {clip_id} appears in both {seen[clip_id]} and {path}; IDs must be unique across "
                              "input files: renumber one file's IDs or load the files separately")
    seen.update(dict.fromkeys(clips.ids.tolist(), path))


def joined(parts: list[ClipSet]) -> ClipSet:
    clips = parts[0] if len(parts) == 1 else concat_clipsets(parts)
    clips.origin = list(dict.fromkeys(clips.origin))
    return clips


def with_levels(clips: ClipSet, label_binning: str | None, require_labels: bool) -> ClipSet:
    """Bin the labels of labelled clips into each target's levels (-1 for unlabelled clips) and record the binning;
    integer levels 0..K-1 become their values on the grid k/(K-1) in ``clips.scores``."""
    targets = clips.targets
    labelled = ~np.isnan(clips.scores).all(axis=1)
    if require_labels and not labelled.all():
        k = int(np.flatnonzero(~labelled)[0])
        columns = "trait columns" if targets.is_big_five else f"--targets columns ({', '.join(targets.names)})"
        raise PerfexError(
            f"{int((~labelled).sum())} of {len(clips)} clips have no labels, e.g. clip {clips.ids[k]} ({clips.files[k]}); "
            f"fill the {columns} of PerFeX files, or pass --labels with a table naming their videos"
        )
    clips.levels = empty_levels(len(clips), len(targets))
    clips.label_binning = None
    if labelled.any():
        scores = clips.scores[labelled]
        clips.levels[labelled], clips.label_binning = scores_to_levels(scores, label_binning, clips.ids[labelled], targets,
                                                                       clips.files[labelled])
        clips.scores[labelled] = on_grid(scores, targets)
    return clips
