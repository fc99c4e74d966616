"""Deploy's first phase, before torch is imported: the outputs refused if they exist, the checkpoint's metadata read
from its JSON, and the inputs read on a background thread, so the first chunk is parsed while the engine loads."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..core.errors import PerfexError
from ..checkpoint.metadata import LEGACY_SUFFIXES, CheckpointMeta, check_family, read_config, resolve_weights
from ..data.options import DeployConfig
from ..data.prepare import read_options
from ..data.readers import ClipChunk, InputScan, find_inputs, iter_clip_chunks
from ..core.tables import refuse_overwrite

T = TypeVar("T")


@dataclass
class DeployInput:
    """A deploy run's checked shard and weights, the metadata its inputs are read with, and the chunks being read in
    the background from them; ``close()`` (or leaving a ``with`` block) stops the reading and waits for it."""

    shard: tuple[int, int]
    weights: Path
    meta: CheckpointMeta
    scan: InputScan
    chunks: ReadAhead[ClipChunk]

    def close(self) -> None:
        self.chunks.close()

    def __enter__(self) -> DeployInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_inputs(config: DeployConfig) -> DeployInput:
    """Deploy's first phase, before torch is imported: refuse outputs that exist, read the checkpoint's metadata and
    start reading the inputs on a background thread, so the first chunk is parsed while the engine loads."""
    shard = check_outputs(config)
    weights = resolve_weights(config.deploy.weights)
    meta = reading_meta(weights, config.family)
    scan = find_inputs(config.data.data)
    return DeployInput(shard, weights, meta, scan, read_ahead(input_chunks(config, meta, scan)))




def input_chunks(config: DeployConfig, meta: CheckpointMeta, scan: InputScan) -> Iterator[ClipChunk]:
    """The inputs in chunks of complete clips, read as the weights need; an unreadable file is recorded, not raised."""
    reading = read_options(config.data, (), meta, tolerate_unreadable=True)
    # deploy ignores labels; binning them leniently keeps labelled inputs with raw (off-grid) scores readable
    return iter_clip_chunks(scan, reading, config.deploy.chunk_rows, keep_rows=bool(config.deploy.per_frame),
                            label_binning="round")


def reading_meta(weights: Path, family: str) -> CheckpointMeta:
    """The metadata the inputs are read with: the JSON beside the weights (of this script's family), or what an
    original ``.pt`` file implies without loading it (raw OpenFace 2 AU intensities, grid labels; its family is
    checked when the engine loads it)."""
    if weights.suffix in LEGACY_SUFFIXES:
        return CheckpointMeta(model=f"legacy_{family}", legacy=True, label_binning="grid")
    meta = read_config(weights)
    check_family(meta, family, weights)
    return meta


def check_outputs(config: DeployConfig) -> tuple[int, int]:
    """Refuse, before any work, outputs that exist (without --force) and option clashes; returns the shard (K, N)."""
    options = config.deploy
    shard = parse_shard(options.shard)
    for path in (options.out, options.per_frame):
        if path:
            refuse_overwrite(Path(path), options.force)
    if options.explain and shard[1] > 1:
        raise PerfexError("--explain with --shard: explain in one process, or give each shard its own --explain folder")
    return shard


def parse_shard(spec: str | None) -> tuple[int, int]:
    """'K/N' -> (K, N) with 0 <= K < N; None -> (0, 1)."""
    if spec is None:
        return 0, 1
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise PerfexError(f"--shard {spec!r} must look like K/N, e.g. 0/4 for the first of four shards") from None
    if not 0 <= k < n:
        raise PerfexError(f"--shard {spec}: K must be between 0 and N-1")
    return k, n


def read_ahead(items: Iterator[T], depth: int = 1) -> ReadAhead:
    """Yield from ``items`` while a background thread, started now (not at the first ``next``), already produces the
    next ``depth``: reading overlaps start-up and inference. An exception in the producer is raised here, at the item
    where it happened."""
    return ReadAhead(items, depth)


_DONE = object()  # what the producer hands over after the last item


class ReadAhead(Iterator[T]):
    """The consumer's side of ``read_ahead``; ``close()`` (or losing the last reference) lets the producer go."""

    def __init__(self, items: Iterator[T], depth: int) -> None:
        self._slots: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        # the thread holds the queue and the event, never self, so an abandoned reader is collected and stops it
        self._thread = threading.Thread(target=_produce, args=(items, self._slots, self._stop), name="perfex-read-ahead",
                                        daemon=True)
        self._thread.start()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item, err = self._slots.get()
        if err is not None or item is _DONE:
            self.close()
            if err is not None:
                raise err
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the producer and wait until it has finished the item it is reading: a thread left inside Arrow's C++
        reader while the interpreter shuts down aborts the process."""
        self._finished = True
        self._stop.set()
        self._thread.join()

    def __del__(self) -> None:
        self._stop.set()


def _produce(items: Iterator, slots: queue.Queue, stop: threading.Event) -> None:
    """Put each item (then the end mark, or the error) in ``slots``, waiting for room, until ``stop`` is set."""

    def hand_over(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in items:
            if not hand_over((item, None)):
                return
        hand_over((_DONE, None))
    except BaseException as err:  # handed to the consumer, raised there
        hand_over((_DONE, err))
