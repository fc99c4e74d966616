"""Deploy: predict every input clip and write a per-clip CSV (and optionally the input rows with traits filled)."""

from __future__ import annotations

import ctypes
import json
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import chain
from pathlib import Path
from typing import ContextManager

import numpy as np
from tqdm import tqdm

from .clip_rows import ClipRows, clip_columns, clip_rows, join_rows, trait_levels, unreadable_rows, write_rows
from ..core.clips import ClipSet
from ..core.compute import show_progress
from .deploy_input import DeployInput, open_inputs
from .engine import Engine
from ..core.errors import PerfexError
from ..checkpoint.metadata import CheckpointMeta
from .onnx_engine import choose_runtime, onnx_engine_or_notice
from ..data.options import DeployConfig
from ..data.readers import ClipChunk, Unreadable
from ..core.schema import BIG_FIVE, FILE_COLUMN, ID_COLUMN, Targets
from ..core.tables import atomic_output, refuse_overwrite


def release_freed_memory() -> None:
    """Hand memory freed by the last chunk back to the OS (glibc keeps it otherwise, and RSS creeps up)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class ChunkPredictor:
    """Turns a chunk of clips into its per-clip rows through an engine (torch or ONNX Runtime), explaining them with
    --explain."""

    def __init__(self, engine: Engine, config: DeployConfig) -> None:
        self.engine, self.config = engine, config

    def rows(self, clips: ClipSet) -> ClipRows:
        """Predictions and status of every clip in ``clips`` (none left out)."""
        lengths = clips.lengths
        predict_short = self.config.deploy.predict_short
        status = np.where(lengths >= self.config.data.min_frames, "ok", np.where(predict_short, "short_predicted", "too_short"))
        status = np.where(lengths == 0, "no_frames", status).astype(object)
        predict = np.flatnonzero((status == "ok") | (status == "short_predicted"))
        targets = self.engine.targets
        probs = np.full((len(clips), len(targets), targets.n_levels), np.nan, dtype=np.float32)
        windows = np.zeros(len(clips), dtype=np.int64)
        if len(predict):
            probs[predict], windows[predict] = self.engine.predict(clips, predict)
        status[(windows > 1) & (status == "ok")] = "windowed"
        rows = clip_rows(clips, status, windows, probs, targets)
        if self.engine.output == "score":
            rows["note"][~np.isnan(probs[:, 0, 0])] = "continuous model: levels are the rounded <trait>_score"
        if self.engine.explain is not None:
            self.engine.explain(clips, trait_levels(rows, targets))
        return rows


def chunk_rows(chunk: ClipChunk, predictor: ChunkPredictor, first_index: int, shard: tuple[int, int]) -> ClipRows:
    """This shard's per-clip rows of one chunk; unreadable files count as clips (after the chunk's clips) for sharding."""
    positions = first_index + np.arange(chunk_size(chunk))
    mine = np.flatnonzero(positions % shard[1] == shard[0])
    clips, files = mine[mine < len(chunk.clips)], mine[mine >= len(chunk.clips)] - len(chunk.clips)
    parts = [predictor.rows(chunk.clips.subset(clips)) if len(clips) else None,
             unreadable_rows([chunk.unreadable[i] for i in files], predictor.engine.targets) if len(files) else None]
    rows = join_rows([p for p in parts if p is not None])
    return {"clip_index": positions[mine], **rows} if shard[1] > 1 else rows


def deploy(config: DeployConfig) -> dict:
    """Run the model over every clip of the inputs and write the per-clip CSV atomically, in three phases: open the
    inputs (read in the background from then on, so the first chunk is read while the engine loads), load the engine,
    write the predictions."""
    with open_inputs(config) as inputs:
        engine = load_engine(config, inputs.weights, inputs.meta)
        return write_predictions(config, inputs, engine)


def load_engine(config: DeployConfig, weights: Path, meta: CheckpointMeta) -> Engine:
    """Deploy's second phase: the model on ONNX Runtime where it can run, else on torch (imported only then)."""
    runtime = choose_runtime(config, weights, meta)
    engine = onnx_engine_or_notice(config, weights, meta) if runtime == "onnxruntime" else None
    if engine is None:
        from .torch_engine import load_torch_engine

        engine = load_torch_engine(config, weights)
    return engine


def write_predictions(config: DeployConfig, inputs: DeployInput, engine: Engine) -> dict:
    """Deploy's last phase: predict chunk after chunk and write the per-clip CSV (and the --per-frame rows)
    atomically; returns the run's summary. Nothing is written when no input file could be read."""
    options, shard = config.deploy, inputs.shard
    chunks = readable_chunks(inputs.chunks)
    if inputs.scan.notice():
        print(inputs.scan.notice(), file=sys.stderr)
    with ExitStack() as stack:
        handle = stack.enter_context(open(stack.enter_context(atomic_output(Path(options.out))), "w", newline=""))
        frames = (stack.enter_context(per_frame_writer(options.per_frame, inputs.scan.files, engine.targets))
                  if options.per_frame else None)
        bar = stack.enter_context(tqdm(desc="deploy", unit="clip", disable=not show_progress(config.run.progress)))
        seen, counts = write_chunks(chunks, ChunkPredictor(engine, config), shard, handle, frames, bar)
    summary = {"clips_in_input": seen, "clips_written": sum(counts.values()), "status_counts": counts, "out": options.out,
               "shard": list(shard), "weights": str(options.weights), "runtime": engine.runtime}
    if shard[1] > 1:
        Path(options.out).with_suffix(".shard.json").write_text(json.dumps(summary, indent=1) + "\n")
    if options.per_frame:
        summary["per_frame"] = options.per_frame
    if engine.explainer is not None:
        summary["explanations"] = str(engine.explainer.close())
        summary["max_completeness_delta"] = engine.explainer.max_delta
    return summary


def readable_chunks(chunks: Iterator[ClipChunk]) -> Iterator[ClipChunk]:
    """``chunks`` with the first one read already: refused when it holds no clip, i.e. when no input file could be
    read (an unreadable file among readable ones still gets its row)."""
    first = next(chunks, None)
    if first is None or not len(first.clips):
        raise PerfexError(no_clip_message(first.unreadable if first is not None else []))
    return chain([first], chunks)


def no_clip_message(unreadable: list[Unreadable]) -> str:
    """One line for inputs without a readable clip: the (first) file's reason, which says what to do."""
    if not unreadable:
        return "the inputs hold no clip; point --data at AU extractor CSVs or PerFeX long CSVs"
    count = f" ({len(unreadable)} files, none readable; the first)" if len(unreadable) > 1 else ""
    return f"no input clip could be read{count}: {unreadable[0].reason}"


def write_chunks(chunks: Iterator[ClipChunk], predictor: ChunkPredictor, shard: tuple[int, int], handle, frames, bar) -> tuple[int, dict]:
    """Predict and write chunk after chunk (per-clip CSV rows, per-frame rows); returns (clips seen, status counts)."""
    columns = clip_columns(predictor.engine.targets)
    handle.write(",".join(columns if shard[1] == 1 else ["clip_index", *columns]) + "\n")
    counts: dict[str, int] = {}
    seen = 0
    for chunk, rows in predicted_rows(chunks, predictor, shard):
        write_rows(handle, rows)
        if frames is not None:
            frames.write(chunk.rows, rows[ID_COLUMN], trait_levels(rows, predictor.engine.targets))
        for status in rows["status"]:
            counts[status] = counts.get(status, 0) + 1
        seen += chunk_size(chunk)
        bar.update(chunk_size(chunk))
        release_freed_memory()
    return seen, counts


def predicted_rows(chunks: Iterator[ClipChunk], predictor: ChunkPredictor,
                   shard: tuple[int, int]) -> Iterator[tuple[ClipChunk, ClipRows]]:
    """Each chunk with this shard's per-clip rows of it."""
    seen = 0
    for chunk in chunks:
        yield chunk, chunk_rows(chunk, predictor, seen, shard)
        seen += chunk_size(chunk)


def chunk_size(chunk: ClipChunk) -> int:
    """The input clips a chunk accounts for: its clips and its unreadable files."""
    return len(chunk.clips) + len(chunk.unreadable)


def per_frame_writer(path: str, files: list, targets: Targets = BIG_FIVE) -> ContextManager:
    """The --per-frame output, one column per target (pandas comes in only with it)."""
    from .per_frame import PerFrameWriter, per_frame_columns

    return PerFrameWriter(path, per_frame_columns(files, targets), targets)


def merge_shards(shard_files: list[str], out: str, force: bool = False) -> dict:
    """Join the per-clip CSVs of shards 0..N-1 into one CSV in input order, checking every clip appears exactly once."""
    import pandas as pd

    refuse_overwrite(Path(out), force)
    infos, frames = [], []
    for name in shard_files:
        info_path = Path(name).with_suffix(".shard.json")
        if not info_path.exists():
            raise PerfexError(f"{info_path} is missing: pass the per-clip CSVs written with --shard K/N")
        infos.append(json.loads(info_path.read_text()))
        frames.append(pd.read_csv(name, dtype={ID_COLUMN: str, FILE_COLUMN: str}))
    n_shards = infos[0]["shard"][1]
    got = sorted(info["shard"][0] for info in infos)
    if got != list(range(n_shards)) or any(info["shard"][1] != n_shards for info in infos):
        raise PerfexError(f"merge needs each of the {n_shards} shards exactly once; got shards {got}")
    total = infos[0]["clips_in_input"]
    merged = pd.concat(frames, ignore_index=True).sort_values("clip_index", kind="stable")
    if merged["clip_index"].tolist() != list(range(total)):
        raise PerfexError(f"the shards do not cover the {total} input clips exactly once; rerun the missing shard(s)")
    with atomic_output(Path(out)) as tmp:
        merged.drop(columns="clip_index").to_csv(tmp, index=False, float_format="%.6g")
    return {"clips_written": len(merged), "out": out, "shards": n_shards}
