"""Training data preparation: load, set short clips aside, split by source video, mix in replay clips.

Returns one value object; nothing here writes files or holds a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..core.clips import ClipSet, concat_clipsets
from ..core.errors import PerfexError
from ..core.schema import BIG_FIVE, Targets, parse_targets
from ..checkpoint.metadata import CheckpointMeta
from .options import DataOptions, TrainConfig
from .readers import ReadOptions, load_clips
from .splits import check_disjoint, load_manifest, make_split, split_indices


@dataclass
class PreparedData:
    """Clips of a run with their split; ``skipped`` are the clips set aside for being too short."""

    clips: ClipSet
    parts: dict[str, np.ndarray]
    manifest: dict
    skipped: ClipSet
    n_replay: int = 0
    targets: Targets = BIG_FIVE  # what the run predicts, continuous ones standardised on the training split

    def normalization(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature mean and std of the training frames (std 1 where a feature is constant)."""
        frames = self.clips.subset(self.parts["train"]).features
        std = frames.std(axis=0)
        return frames.mean(axis=0), np.where(std > 1e-6, std, 1.0)


def read_options(data: DataOptions, features: str | tuple[str, ...], trained: CheckpointMeta | None = None,
                 tolerate_unreadable: bool = False) -> ReadOptions:
    """How to read a run's inputs: its data options, plus what the weights were trained on when there are weights
    (their exact columns, per-clip normalisation and extractor, which the inputs must match)."""
    if trained is None:
        return ReadOptions(features=features, nan_policy=data.nan_policy, min_confidence=data.min_confidence,
                           normalize=data.normalize, cache_dir=data.cache_dir, tolerate_unreadable=tolerate_unreadable)
    return ReadOptions(features=tuple(trained.feature_names), nan_policy=data.nan_policy, min_confidence=data.min_confidence,
                       normalize=trained.normalize, cache_dir=data.cache_dir, expect=trained.provenance or {},
                       allow_extractor_mismatch=data.allow_extractor_mismatch, tolerate_unreadable=tolerate_unreadable)


def load_labelled(paths: Sequence[str], data: DataOptions, trained: CheckpointMeta | None = None,
                  targets: Targets | None = None) -> ClipSet:
    """Every clip of ``paths`` with its labels for ``targets`` (default: the weights' targets, else the Big Five; an
    unlabelled clip is an error), read with the run's data options (and, given the weights' metadata, as those weights
    need)."""
    targets = targets or (trained.target_set if trained is not None else BIG_FIVE)
    return load_clips(paths, read_options(data, data.features, trained), labels=data.labels,
                      label_binning=data.label_binning, require_labels=True, targets=targets)


def run_targets(config: TrainConfig, parent: CheckpointMeta | None) -> Targets:
    """What a run predicts: ``--targets`` (default the Big Five), or a retrain's parent's targets (which a different
    ``--targets`` may not change)."""
    asked = parse_targets(config.train.targets)
    if parent is None:
        return asked
    inherited = parent.target_set
    if config.train.targets is not None and asked.spec() != inherited.spec():
        raise PerfexError(f"--targets {config.train.targets} differs from the checkpoint's ({inherited.spec()}); a retrain "
                          "predicts what its parent predicts: drop --targets, or train a new model")
    return inherited


def split_off_short(clips: ClipSet, min_frames: int) -> tuple[ClipSet, ClipSet]:
    """(clips with at least ``min_frames`` frames, the shorter ones)."""
    short = clips.lengths < min_frames
    return clips.subset(np.flatnonzero(~short)), clips.subset(np.flatnonzero(short))


def originals_only_in_evaluation(clips: ClipSet, parts: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    """Drop augmented copies from the validation and test parts (they stay with their source video, unused)."""
    augmented = np.asarray(clips.augmentation) != "none"
    kept = {name: index if name == "train" else index[~augmented[index]] for name, index in parts.items()}
    return kept, sum(len(parts[n]) - len(kept[n]) for n in parts)


def training_clips(config: TrainConfig, parent: CheckpointMeta | None, log: Callable[[str], None]) -> tuple[ClipSet, ClipSet]:
    """The run's labelled clips long enough to train on, and the shorter ones set aside (both logged).

    Continuous targets train on the raw scores; their levels (for reports) are the rounded scores."""
    data = config.data
    if config.train.target == "continuous" and data.label_binning is None:
        data = replace(data, label_binning="round")
    clips = load_labelled(data.data, data, parent, run_targets(config, parent))
    log(f"data: {clips.summary()} from {len(clips.origin)} file(s)")
    clips, skipped = split_off_short(clips, config.data.min_frames)
    if len(skipped):
        ids = ", ".join(map(str, skipped.ids[:5]))
        log(f"skipping {len(skipped)} clip(s) shorter than --min-frames {config.data.min_frames} (e.g. {ids}); "
            "listed in skipped_clips.csv")
    return clips, skipped


def prepare_training_data(config: TrainConfig, parent: CheckpointMeta | None, log: Callable[[str], None]) -> PreparedData:
    """Load the run's data, set short clips aside, split it (seeded or from --split), add replay clips for retrain."""
    clips, skipped = training_clips(config, parent, log)
    t = config.train
    manifest = load_manifest(t.split) if t.split else make_split(
        clips, (1 - t.val_fraction - t.test_fraction, t.val_fraction, t.test_fraction), seed=config.run.seed)
    parts = split_indices(clips, manifest)
    check_disjoint(clips, parts)
    parts, n_copies = originals_only_in_evaluation(clips, parts)
    if n_copies:
        log(f"{n_copies} augmented cop{'y' if n_copies == 1 else 'ies'} of validation/test videos set aside: "
            "validation and test score original clips only")
    if len(parts["train"]) == 0 or len(parts["val"]) == 0:
        raise PerfexError("the split leaves no training or no validation clips; add data or change --val-fraction")
    log(" | ".join(f"{k}: {len(v)} clips" for k, v in parts.items()))
    targets = parent.target_set if parent is not None else clips.targets.with_standardisation(clips.scores[parts["train"]])
    prepared = PreparedData(clips, parts, manifest, skipped, targets=targets)
    if config.retrain is not None and config.retrain.replay_fraction > 0:
        prepared = with_replay(prepared, config, parent, log)
    return prepared


def with_replay(prepared: PreparedData, config: TrainConfig, parent: CheckpointMeta | None,
                log: Callable[[str], None]) -> PreparedData:
    """Mix the parent's own training clips (never its val/test clips) into the fine-tuning training split."""
    retrain = config.retrain
    replay = load_labelled(retrain.replay_data, config.data, parent, prepared.targets)
    pool = split_indices(replay, parent.split)["train"] if parent is not None and parent.split else np.arange(len(replay))
    pool = pool[replay.lengths[pool] >= config.data.min_frames]
    n_user = len(prepared.parts["train"])
    n_replay = min(len(pool), round(retrain.replay_fraction / (1 - retrain.replay_fraction) * n_user))
    chosen = np.sort(np.random.default_rng(config.run.seed).choice(pool, size=n_replay, replace=False))
    replay_part = replay.subset(chosen)
    replay_part.ids = np.array([f"replay:{i}" for i in replay_part.ids], dtype=object)
    replay_part.source_ids = replay_part.ids.copy()
    start = len(prepared.clips)
    parts = dict(prepared.parts, train=np.concatenate([prepared.parts["train"], start + np.arange(n_replay)]))
    log(f"replay: {n_replay} clips from the original training split mixed into {n_user} user-study clips")
    return PreparedData(concat_clipsets([prepared.clips, replay_part]), parts, prepared.manifest, prepared.skipped, n_replay,
                        prepared.targets)
