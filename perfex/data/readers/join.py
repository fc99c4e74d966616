"""Labels joined onto clips, clip ids checked across files, and scores binned into levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...core.clips import ClipSet, concat_clipsets, empty_levels
from ...core.errors import PerfexError
from ..labels import BINNINGS, read_labels, scores_to_levels, strip_video_extension
from .parts import InputFile


class LabelTable:
    """A labels table looked up by video name, with or without its extension."""

    def __init__(self, path: str | Path):
        table = read_labels(path)
        self.values = table.to_numpy(dtype=np.float64)
        self.names = table.index.tolist()
        self.position = {strip_video_extension(n): i for i, n in enumerate(self.names)} | {n: i for i, n in enumerate(self.names)}

    def _find(self, keys: list[str]) -> int | None:
        for key in keys:
            i = self.position.get(key, self.position.get(strip_video_extension(key)))
            if i is not None:
                return i
        return None

    def fill(self, clips: ClipSet, source: InputFile) -> ClipSet:
        """Give unlabelled clips the table's scores: PerFeX clips by File; extractor clips by clip id, or by the
        file's other names when it holds one face (they also take the table's video name as File)."""
        perfex = source.long
        for k in np.flatnonzero(np.isnan(clips.scores).all(axis=1)):
            keys = [str(clips.files[k])] if perfex else [str(clips.ids[k]), *(source.aliases if len(clips) == 1 else ())]
            i = self._find(keys)
            if i is not None:
                clips.scores[k] = self.values[i]
                if not perfex:
                    clips.files[k] = self.names[i]
        return clips


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
    """Bin the scores of labelled clips into levels (-1 for unlabelled ones) and record the binning."""
    labelled = ~np.isnan(clips.scores).all(axis=1)
    if require_labels and not labelled.all():
        k = int(np.flatnonzero(~labelled)[0])
        raise PerfexError(
            f"{int((~labelled).sum())} of {len(clips)} clips have no labels, e.g. clip {clips.ids[k]} ({clips.files[k]}); "
            "fill the trait columns of PerFeX files, or pass --labels with a table naming their videos"
        )
    clips.levels = empty_levels(len(clips))
    clips.label_binning = None
    if labelled.any():
        clips.levels[labelled], clips.label_binning = scores_to_levels(clips.scores[labelled], label_binning, clips.ids[labelled])
    return clips
