"""Turn a ClipSet into padded mini-batches: length-bucketed, shardable across ranks, windowed for long clips."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.clips import ClipSet
from ..core.windows import pad_frames


@dataclass
class Batch:
    """A padded batch: ``x [B,T,F]``, ``times [B,T]``, ``lengths [B]``, ``levels [B,5]``, clip ``index [B]``, trait
    ``scores [B,5]`` (NaN where unknown)."""

    x: torch.Tensor
    times: torch.Tensor
    lengths: torch.Tensor
    levels: torch.Tensor
    index: torch.Tensor
    scores: torch.Tensor

    def to(self, device: torch.device) -> Batch:
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Batch(move(self.x), move(self.times), move(self.lengths), move(self.levels), self.index, move(self.scores))


def collate(clips: ClipSet, index: np.ndarray, starts: np.ndarray, lengths: np.ndarray, pad_to: int | None = None) -> Batch:
    """Copy frames ``[starts[i], starts[i]+lengths[i])`` of clips ``index[i]`` into one zero-padded batch."""
    x, times = pad_frames(clips, index, starts, lengths, pad_to)
    levels = clips.levels[index] if clips.levels is not None else np.full((len(index), len(clips.targets)), -1)
    scores = clips.scores[index] if clips.scores is not None else np.full((len(index), len(clips.targets)), np.nan)
    return Batch(
        torch.from_numpy(x),
        torch.from_numpy(times),
        torch.from_numpy(lengths.astype(np.int64)),
        torch.from_numpy(np.asarray(levels, dtype=np.int64)),
        torch.from_numpy(np.asarray(index, dtype=np.int64)),
        torch.from_numpy(np.asarray(scores, dtype=np.float32)),
    )


def rank_share(n_items: int, epoch: int, seed: int, rank: int, world_size: int) -> np.ndarray:
    """This rank's shuffled item indices for an epoch, picked by torch's DistributedSampler.

    Ranks get disjoint, equal shares; with several ranks up to ``world_size - 1`` items (a different few each
    epoch) sit out rather than being repeated on two ranks.
    """
    sampler = torch.utils.data.DistributedSampler(
        range(n_items), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=world_size > 1
    )
    sampler.set_epoch(epoch)
    return np.fromiter(iter(sampler), dtype=np.int64, count=len(sampler))


def training_batches(
    clips: ClipSet, index: np.ndarray, batch_size: int, max_frames: int, rng: np.random.Generator, pad_to: int | None = None,
    min_crop: float = 1.0,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Group clips of similar length into batches (less padding) and pick a random crop for long ones; with
    ``min_crop < 1`` every clip is cropped to a random share in [min_crop, 1] of its frames (augmentation).

    Returns (clip index, crop start, crop length) per batch, in random batch order.
    """
    lengths = clips.lengths[index]
    crop = np.minimum(lengths, max_frames)
    if min_crop < 1:
        crop = np.maximum(1, np.round(crop * rng.uniform(min_crop, 1.0, len(index)))).astype(crop.dtype)
    starts = (rng.random(len(index)) * (lengths - crop + 1)).astype(np.int64)
    order = rng.permutation(len(index))
    bucket = batch_size * 16
    for begin in range(0, len(order), bucket):
        chunk = order[begin : begin + bucket]
        order[begin : begin + bucket] = chunk[np.argsort(crop[chunk], kind="stable")]
    batches = [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return [(index[b], starts[b], crop[b]) for b in batches]
