"""Reading inputs whole (load_clips) or streamed in chunks of complete clips (iter_clip_chunks), one path for both."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..cache import cache_file, load_cached, save_cached
from ...core.clips import ClipSet
from ...core.errors import PerfexError
from ...core.schema import TRAITS, Targets
from .extractors import check_compatible, describe
from .formats import InputFormat, get_format
from .inputs import InputScan, find_inputs
from .join import LabelTable, check_binning, check_new_ids, joined, with_levels
from .messages import UnreadableFile
from .normalize import center_on_clip_median
from .options import ReadOptions
from .parsers.perfex_long import target_columns
from .parts import ClipChunk, InputFile, Part, RowBlock, Unreadable

PathsLike = Sequence[str | Path | InputFile] | str | Path | InputScan


def _sources(paths: PathsLike, options: ReadOptions) -> list[InputFile]:
    """The input files (``find_inputs`` unless already found), with the skipped-files notice sent."""
    if not isinstance(paths, (str, Path, InputScan)) and paths and all(isinstance(p, InputFile) for p in paths):
        return list(paths)
    scan = paths if isinstance(paths, InputScan) else find_inputs(paths)
    if scan.notice():
        _notify(options, scan.notice())
    return scan.files


def _notify(options: ReadOptions, message: str) -> None:
    (options.notify or (lambda text: print(text, file=sys.stderr)))(message)


def _format(source: InputFile) -> InputFormat:
    """The registered format that reads ``source`` (PerFeX long when none recognised it)."""
    return get_format(source.sniffed.fmt if source.sniffed is not None else None)


def _cache_key(source: InputFile, options: ReadOptions) -> dict:
    """What a file's parse depends on besides its bytes."""
    fmt = _format(source)
    key = {"reader": fmt.name, "clip_name": source.clip_name, "features": list(options.columns),
           "flexible": options.flexible, "nan_policy": options.nan_policy}
    if options.targets.names != TRAITS:  # the scores a PerFeX file is parsed into (the Big Five keep their old keys)
        key["targets"] = list(options.targets.names)
    return key | {"min_confidence": options.min_confidence} if fmt.confidence else key


def _cached_parts(source: InputFile, options: ReadOptions) -> Iterator[Part]:
    """A whole file's clips, through the cache when ``options.cache_dir`` is set."""
    if options.cache_dir is None:
        yield from _parts(source, options, None, False)
        return
    entry = cache_file(options.cache_dir, source.path, _cache_key(source, options))
    cached = load_cached(entry, source.path)
    if cached is not None:
        cached.provenance = _format(source).extractor.provenance
        if source.long:
            cached.targets = options.targets
        yield Part(cached)
        return
    parts = list(_parts(source, options, None, False))
    save_cached(entry, parts[0].clips)
    yield from parts


def _parts(source: InputFile, options: ReadOptions, chunk_rows: int | None, keep_rows: bool) -> Iterator[Part]:
    yield from _format(source).read(source, options, chunk_rows, keep_rows)


class _Reading:
    """State of one read over many files: labels, ids seen, extractor seen, notices sent, unreadable files."""

    def __init__(self, options: ReadOptions, labels: str | Path | None, label_binning: str | None):
        check_binning(label_binning)
        self.options = options
        self.labels = LabelTable(labels, options.targets) if labels is not None else None
        self.seen: dict = {}
        self.first: tuple | None = None
        self.noticed: set[str] = set()
        self.unreadable: list[Unreadable] = []

    def parts(self, source: InputFile, chunk_rows: int | None, keep_rows: bool) -> Iterator[Part]:
        """Each part of ``source``, checked and labelled; an unreadable extractor file is recorded when tolerated."""
        whole = chunk_rows is None and not keep_rows
        try:
            if source.error is not None:
                raise UnreadableFile(source.error)
            if self.options.expect is not None:
                check_compatible(self.options.expect, _format(source).extractor.provenance,
                                 self.options.allow_extractor_mismatch, where=str(source.path))
            for part in _cached_parts(source, self.options) if whole else _parts(source, self.options, chunk_rows, keep_rows):
                yield self._accept(part, source)
        except UnreadableFile as err:
            if not self.options.tolerate_unreadable or source.long:
                raise
            self.unreadable.append(Unreadable(source.clip_name, str(source.path), str(err)))

    def _accept(self, part: Part, source: InputFile) -> Part:
        clips = part.clips
        self._check_same_extractor(clips, source)
        check_new_ids(clips, source.path, self.seen)
        notice = _format(source).notice
        notices = [*part.notices, *([notice] if notice and len(clips) > 1 else [])]
        for notice in notices:
            if notice not in self.noticed:
                self.noticed.add(notice)
                _notify(self.options, notice)
        if not source.long:
            clips = _unlabelled_as(clips, self.options.targets)
        if self.labels is not None:
            present = target_columns(source.sniffed.raw_names(), self.options.targets) if source.long else ()
            self.labels.fill(clips, source, present)
        if self.options.normalize == "clip-median":
            part.clips = center_on_clip_median(clips)
        return part

    def _check_same_extractor(self, clips: ClipSet, source: InputFile) -> None:
        got = (clips.provenance.extractor, clips.provenance.scale)
        if self.first is None:
            self.first = (got, source.path)
        elif self.first[0] != got:
            raise PerfexError(f"{source.path} holds {describe(*got)} but {self.first[1]} holds {describe(*self.first[0])}; "
                              "read one extractor's outputs at a time (a model needs one input scale)")


def _unlabelled_as(clips: ClipSet, targets: Targets) -> ClipSet:
    """An extractor's clips (which carry no labels) with NaN scores for ``targets``."""
    if clips.targets != targets:
        clips.scores, clips.targets = np.full((len(clips), len(targets)), np.nan), targets
    return clips


def _options(options: ReadOptions | None, targets: Targets | None = None, **legacy) -> ReadOptions:
    """``options`` as given, or made from the keyword arguments (None values left at their defaults), reading
    ``targets`` when given."""
    if options is None:
        options = ReadOptions(**{name: value for name, value in legacy.items() if value is not None})
    return options if targets is None else replace(options, targets=targets)


def load_clips(paths: PathsLike, options: ReadOptions | None = None, *, labels: str | Path | None = None,
               label_binning: str | None = None, require_labels: bool = False, features: str | Sequence[str] | None = None,
               nan_policy: str | None = None, min_confidence: float | None = None,
               cache_dir: str | Path | None = None, targets: Targets | None = None) -> ClipSet:
    """Read PerFeX long CSVs and/or one extractor's CSVs (files or folders) into one ClipSet.

    ``labels`` is a labels table for extractor inputs (and PerFeX clips with empty target columns, or targets whose
    column a file lacks). ``targets`` are the label columns read (None: ``options.targets``, the Big Five by default).
    Without ``options``, the keyword arguments make them.
    """
    options = _options(options, targets, features=features, nan_policy=nan_policy, min_confidence=min_confidence,
                       cache_dir=cache_dir)
    reading = _Reading(options, labels, label_binning)
    clips = [part.clips for source in _sources(paths, options) for part in reading.parts(source, None, False)]
    return with_levels(joined(clips), label_binning, require_labels)


def read(path: str | Path, options: ReadOptions | None = None) -> ClipSet:
    """One file or folder, whole, with ``options`` (defaults when None)."""
    return load_clips([path], options or ReadOptions())


def _empty(options: ReadOptions) -> ClipSet:
    columns = options.columns
    return ClipSet(ids=np.zeros(0, dtype=object), files=np.zeros(0, dtype=object), offsets=np.zeros(1, dtype=np.int64),
                   features=np.zeros((0, len(columns)), dtype=np.float32), times=np.zeros(0, dtype=np.float32),
                   feature_names=columns, scores=np.zeros((0, len(options.targets))), targets=options.targets)


def iter_clip_chunks(paths: PathsLike, options: ReadOptions | None = None, chunk_rows: int = 1_000_000, *,
                     labels: str | Path | None = None, label_binning: str | None = None, require_labels: bool = False,
                     keep_rows: bool = False, features: str | Sequence[str] | None = None, nan_policy: str | None = None,
                     min_confidence: float | None = None, targets: Targets | None = None) -> Iterator[ClipChunk]:
    """Stream inputs as chunks of complete clips of about ``chunk_rows`` frames (the same clips as load_clips).

    Memory stays bounded: PerFeX files are read in record batches (each clip's rows together), extractor files one at
    a time. With ``options.tolerate_unreadable`` a file that cannot be read is reported in the next chunk's
    ``unreadable``; with ``keep_rows`` each chunk carries its clips' input rows (for per-frame output). ``targets``
    as for load_clips.
    """
    options = _options(options, targets, features=features, nan_policy=nan_policy, min_confidence=min_confidence)
    if label_binning == "quantile":
        raise PerfexError("--label-binning quantile needs every clip at once to find its edges: load the data whole, "
                          "or pass the recorded 'quantile:...' binning")
    reading = _Reading(options, labels, label_binning)
    pending: list[ClipSet] = []
    rows: list[RowBlock] = []
    n_pending = 0
    for source in _sources(paths, options):
        for part in reading.parts(source, chunk_rows, keep_rows):
            pending.append(part.clips)
            rows.extend([part.rows] if part.rows is not None else [])
            n_pending += part.clips.features.shape[0]
            if n_pending >= chunk_rows:
                yield _chunk(pending, rows, reading, label_binning, require_labels)
                pending, rows, n_pending = [], [], 0
    if pending or reading.unreadable:
        yield _chunk(pending, rows, reading, label_binning, require_labels)


def _chunk(pending: list[ClipSet], rows: list[RowBlock], reading: _Reading, label_binning: str | None,
           require_labels: bool) -> ClipChunk:
    clips = joined(pending) if pending else _empty(reading.options)
    unreadable, reading.unreadable = reading.unreadable, []
    return ClipChunk(with_levels(clips, label_binning, require_labels), unreadable, rows)
