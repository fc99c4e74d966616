"""What deploy reads and where it writes, checked and started before torch is imported: the outputs refused if they
exist, the checkpoint's metadata read from its JSON, and the inputs read on a background thread, so the first chunk
is parsed while torch loads."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .errors import PerfexError
from .metadata import LEGACY_SUFFIXES, CheckpointMeta, check_family, read_config, resolve_weights
from .options import DeployConfig
from .prepare import read_options
from .readers import ClipChunk, InputScan, find_inputs, iter_clip_chunks
from .tables import refuse_overwrite

T = TypeVar("T")


@dataclass
class DeployInput:
    """A deploy run's checked shard and weights, its inputs, and the chunks being read from them."""

    shard: tuple[int, int]
    weights: Path
    meta: CheckpointMeta
    scan: InputScan
    chunks: Iterator[ClipChunk]


def start_reading(config: DeployConfig, meta: CheckpointMeta | None = None) -> DeployInput | None:
    """Check the outputs and start reading the inputs in the background; None where the metadata comes only with the
    loaded weights (an original ``.pt`` file) and ``meta`` is not given."""
    shard = check_outputs(config)
    weights = resolve_weights(config.deploy.weights)
    if meta is None:
        if weights.suffix in LEGACY_SUFFIXES:
            return None
        meta = read_config(weights)
        check_family(meta, config.family, weights)
    scan = find_inputs(config.data.data)
    reading = read_options(config.data, (), meta, tolerate_unreadable=True)
    # deploy ignores labels; binning them leniently keeps labelled inputs with raw (off-grid) scores readable
    chunks = read_ahead(iter_clip_chunks(scan, reading, config.deploy.chunk_rows, keep_rows=bool(config.deploy.per_frame),
                                         label_binning="round"))
    return DeployInput(shard, weights, meta, scan, chunks)


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


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield from ``items`` while a background thread already produces the next ``depth`` (reading overlaps inference).

    An exception in the producer is raised here, at the item where it happened.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def hand_over(entry: tuple) -> bool:
        """Wait for a free slot, giving up once the consumer has stopped (so this thread never hangs)."""
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over((item, None)):
                    return
            hand_over((done, None))
        except BaseException as err:  # handed to the consumer, raised there
            hand_over((done, err))

    worker = threading.Thread(target=produce, name="perfex-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, err = slots.get()
            if err is not None:
                raise err
            if item is done:
                return
            yield item
    finally:
        stop.set()
