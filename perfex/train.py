"""Training and fine-tuning engine: one loop for train and retrain, single process or torchrun DDP."""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import distributed
from .batches import collate, rank_share, training_batches
from .checkpoint import (check_features, file_sha256, load_checkpoint, load_optimizer, portable_path, resolve_weights,
                         save_checkpoint, save_optimizer)
from .clips import ClipSet, concat_clipsets
from .errors import PerfexError
from .evaluate import trait_metrics
from .io import load_labelled
from .predict import predict_probs
from .schema import LEVEL_GRID, N_LEVELS, TRAITS, resolve_features
from .splits import check_disjoint, load_manifest, make_split, manifest_hash, save_manifest, split_indices


@dataclass
class TrainConfig:
    """Every knob of a train or retrain run; stored in each checkpoint's config."""

    model: str
    data: list[str]
    out: str
    labels: str | None = None
    weights: str | None = None  # retrain: the checkpoint to start from
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 15
    seed: int = 0
    device: str = "auto"
    workers: int = 0
    features: str = "au"
    max_frames: int = 700
    min_frames: int = 40
    split: str | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    nan_policy: str = "error"
    min_confidence: float = 0.8
    label_binning: str | None = None
    cache_dir: str | None = None
    replay_data: list[str] = field(default_factory=list)
    replay_fraction: float = 0.0
    freeze_encoder: bool = False
    resume: bool = False
    amp: bool = False
    record_samples: bool = False
    progress: bool = True


def data_fingerprint(clips: ClipSet) -> str:
    """Hash of clip ids, lengths, frames and labels: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    for array in (np.asarray(clips.ids).astype(str), clips.offsets, clips.features, clips.levels):
        digest.update(np.ascontiguousarray(array).tobytes() if array.dtype != object else "|".join(array).encode())
    return digest.hexdigest()[:16]


def trait_loss(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each trait's five levels, summed over traits, averaged over clips."""
    per_trait = F.cross_entropy(logits.float().reshape(-1, N_LEVELS), levels.reshape(-1), reduction="none")
    return per_trait.view(-1, len(TRAITS)).sum(dim=1).mean()


def validation_scores(context: distributed.Context, model: nn.Module, clips: ClipSet, index: np.ndarray, config: TrainConfig) -> dict:
    """Loss, accuracy and macro-F1 on the validation clips; each rank predicts a share, rank results are joined."""
    share = index[context.rank :: context.world_size]
    probs, _ = predict_probs(model, clips, share, batch_size=config.batch_size * 2, device=context.device, amp=config.amp)
    parts = distributed.gather_objects(context, (share, probs))
    order = np.concatenate([p[0] for p in parts])
    probs = np.concatenate([p[1] for p in parts])[np.argsort(order)]
    levels = clips.levels[np.sort(order)]
    picked = np.take_along_axis(probs, levels[:, :, None], axis=2)[..., 0]
    metrics = trait_metrics(levels, probs)
    return {
        "val_loss": float(-np.log(np.clip(picked, 1e-12, None)).sum(axis=1).mean()),
        "val_accuracy": metrics["mean"]["accuracy"],
        "val_f1_macro": metrics["mean"]["f1_macro"],
        "val_per_trait_accuracy": {t: metrics["per_trait"][t]["accuracy"] for t in TRAITS},
    }


class Trainer:
    """Holds data, model, optimiser and run directory for one train or retrain run."""

    def __init__(self, config: TrainConfig, family: str, retrain: bool) -> None:
        self.config, self.family, self.retrain = config, family, retrain
        self.context = distributed.setup(config.device)
        self.out = Path(config.out)
        self.log = print if self.context.is_main else (lambda *a, **k: None)
        torch.manual_seed(config.seed)
        self._check_run_dir()
        self.parent_meta: dict | None = None
        self.model = self._build_model_and_data()
        self.model.to(self.context.device)
        trainable = [p for name, p in self.model.named_parameters() if not (config.freeze_encoder and not name.startswith("head."))]
        if config.freeze_encoder:
            for name, p in self.model.named_parameters():
                p.requires_grad_(name.startswith("head."))
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
        self.engine = self.model
        if self.context.distributed:
            ids = [self.context.local_rank] if self.context.device.type == "cuda" else None
            self.engine = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.history: list[dict] = []
        self.start_epoch, self.best_score, self.best_epoch = 1, -1.0, 0
        if config.resume:
            self._resume()

    # ----- setup -----
    def _check_run_dir(self) -> None:
        has_run = (self.out / "last.safetensors").exists()
        if has_run and not self.config.resume:
            raise PerfexError(f"{self.out} already holds a run; pass --resume to continue it or choose another --out")
        if self.config.resume and not has_run:
            raise PerfexError(f"--resume: {self.out} holds no last.safetensors to continue from")

    def _build_model_and_data(self) -> nn.Module:
        from models import create_model

        c = self.config
        if self.retrain:
            if not c.weights:
                raise PerfexError("retrain needs --weights: the checkpoint to fine-tune (e.g. weights/cnn.safetensors)")
            model, self.parent_meta = load_checkpoint(c.weights, family=self.family)
            features = tuple(self.parent_meta["feature_names"])
        else:
            features = resolve_features(c.features)
        clips = load_labelled(c.data, c, features)
        if self.retrain:
            check_features(self.parent_meta, clips.feature_names, c.weights)
        self.log(f"data: {clips.summary()} from {len(clips.origin)} file(s)")
        self.clips, self.parts = self._split(clips)
        if c.replay_fraction > 0:
            self._add_replay(features)
        if not self.retrain:
            model = create_model(self.family, n_features=len(features), max_frames=c.max_frames)
            train_frames = self.clips.subset(self.parts["train"]).features
            std = train_frames.std(axis=0)
            model.set_normalization(train_frames.mean(axis=0), np.where(std > 1e-6, std, 1.0))
        return model

    def _split(self, clips: ClipSet) -> tuple[ClipSet, dict[str, np.ndarray]]:
        c = self.config
        too_short = clips.lengths < c.min_frames
        if too_short.any():
            ids = ", ".join(map(str, clips.ids[too_short][:5]))
            self.log(f"skipping {int(too_short.sum())} clip(s) shorter than --min-frames {c.min_frames} (e.g. {ids}); listed in skipped_clips.csv")
            if self.context.is_main:
                self.out.mkdir(parents=True, exist_ok=True)
                with open(self.out / "skipped_clips.csv", "w", newline="") as handle:
                    writer = csv.writer(handle)
                    writer.writerow(["ID", "File", "n_frames", "reason"])
                    for i in np.flatnonzero(too_short):
                        writer.writerow([clips.ids[i], clips.files[i], clips.lengths[i], f"fewer than {c.min_frames} frames"])
            clips = clips.subset(np.flatnonzero(~too_short))
        if c.split:
            self.manifest = load_manifest(c.split)
        else:
            fractions = (1 - c.val_fraction - c.test_fraction, c.val_fraction, c.test_fraction)
            self.manifest = make_split(clips, fractions, seed=c.seed)
        parts = split_indices(clips, self.manifest)
        check_disjoint(clips, parts)
        if len(parts["train"]) == 0 or len(parts["val"]) == 0:
            raise PerfexError("the split leaves no training or no validation clips; add data or change --val-fraction")
        self.log(" | ".join(f"{k}: {len(v)} clips" for k, v in parts.items()))
        return clips, parts

    def _add_replay(self, features: tuple[str, ...]) -> None:
        """Mix the parent's own training clips (never its val/test clips) into the fine-tuning set."""
        c = self.config
        if not c.replay_data:
            raise PerfexError("--replay-fraction needs --replay-data: the original training data to mix in")
        if not 0 < c.replay_fraction < 1:
            raise PerfexError(f"--replay-fraction {c.replay_fraction} must be between 0 and 1 (e.g. 0.3)")
        replay = load_labelled(c.replay_data, c, features)
        parent_split = self.parent_meta.get("split") if self.parent_meta else None
        pool = split_indices(replay, parent_split)["train"] if parent_split else np.arange(len(replay))
        pool = pool[replay.lengths[pool] >= c.min_frames]
        n_user = len(self.parts["train"])
        n_replay = min(len(pool), round(c.replay_fraction / (1 - c.replay_fraction) * n_user))
        chosen = np.sort(np.random.default_rng(c.seed).choice(pool, size=n_replay, replace=False))
        replay_part = replay.subset(chosen)
        replay_part.ids = np.array([f"replay:{i}" for i in replay_part.ids], dtype=object)
        replay_part.source_ids = replay_part.ids.copy()
        start = len(self.clips)
        self.clips = concat_clipsets([self.clips, replay_part])
        self.parts["train"] = np.concatenate([self.parts["train"], start + np.arange(n_replay)])
        self.log(f"replay: {n_replay} clips from the original training split mixed into {n_user} user-study clips")

    def _resume(self) -> None:
        state = load_checkpoint(self.out / "last.safetensors")[0].state_dict()
        self.model.load_state_dict(state)
        extra = load_optimizer(self.optimizer, self.out / "last.optim.safetensors")
        self.start_epoch = extra["epoch"] + 1
        self.best_score, self.best_epoch = extra["best_score"], extra["best_epoch"]
        self.history = extra["history"]
        self.log(f"resuming {self.out} after epoch {extra['epoch']} (best so far: epoch {self.best_epoch})")

    # ----- loop -----
    def run(self) -> dict:
        c = self.config
        if self.context.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_manifest(self.manifest, self.out / "split.json")
            (self.out / "train_config.json").write_text(json.dumps(asdict(c), indent=1) + "\n")
        train_index, val_index = self.parts["train"], self.parts["val"]
        since_best = 0 if not self.history else len(self.history) + 1 - self.best_epoch
        for epoch in range(self.start_epoch, c.epochs + 1):
            started = time.perf_counter()
            train_loss, n_clips = self._train_epoch(epoch, train_index)
            scores = validation_scores(self.context, self.engine.module if self.context.distributed else self.model, self.clips, val_index, c)
            seconds = time.perf_counter() - started
            row = {"epoch": epoch, "train_loss": train_loss, **{k: v for k, v in scores.items() if k != "val_per_trait_accuracy"},
                   "lr": self.optimizer.param_groups[0]["lr"], "seconds": seconds, "train_clips_per_s": n_clips / seconds}
            self.history.append(row)
            improved = scores["val_f1_macro"] > self.best_score
            if improved:
                self.best_score, self.best_epoch, since_best = scores["val_f1_macro"], epoch, 0
            else:
                since_best += 1
            self._save(epoch, scores, improved)
            per_trait = " ".join(f"{t[:4]}={a:.2f}" for t, a in scores["val_per_trait_accuracy"].items())
            self.log(f"epoch {epoch:3d}  train_loss {train_loss:.3f}  val_loss {scores['val_loss']:.3f}  "
                     f"val_acc {scores['val_accuracy']:.3f}  val_f1 {scores['val_f1_macro']:.3f}  [{per_trait}]"
                     f"{'  *best' if improved else ''}")
            if since_best >= c.patience:
                self.log(f"early stop: no better validation macro-F1 for {c.patience} epochs")
                break
        self._finish()
        distributed.teardown(self.context)
        return {"best_epoch": self.best_epoch, "best_val_f1_macro": self.best_score, "run_dir": str(self.out)}

    def _train_epoch(self, epoch: int, train_index: np.ndarray) -> tuple[float, int]:
        c = self.config
        share = train_index[rank_share(len(train_index), epoch, c.seed, self.context.rank, self.context.world_size)]
        rng = np.random.default_rng([c.seed, epoch, self.context.rank])
        torch.manual_seed(int(rng.integers(2**62)))  # dropout depends on (seed, epoch, rank) only: resume is exact
        plan = training_batches(self.clips, share, c.batch_size, c.max_frames, rng, pad_to=getattr(self.model, "fixed_length", None))
        if c.record_samples:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / f"samples_rank{self.context.rank}.txt", "a") as handle:
                handle.write(" ".join(str(self.clips.ids[i]) for i in share) + "\n")
        loader = torch.utils.data.DataLoader(
            plan, batch_size=None, num_workers=c.workers, collate_fn=lambda p: collate(self.clips, *p, pad_to=getattr(self.model, "fixed_length", None)),
        )
        self.engine.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not (c.progress and self.context.is_main))
        autocast = torch.autocast(self.context.device.type, dtype=torch.bfloat16, enabled=c.amp)
        for batch in bar:
            batch = batch.to(self.context.device)
            with autocast:
                logits = self.engine(batch.x, batch.lengths, batch.times)
            loss = trait_loss(logits, batch.levels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch.lengths)
            count += len(batch.lengths)
            bar.set_postfix(loss=f"{total / count:.3f}")
        return distributed.mean_across_ranks(self.context, total / max(count, 1), count), count * self.context.world_size

    # ----- outputs -----
    def _meta(self, epoch: int, scores: dict) -> dict:
        from models import config_to_dict

        model = self.model
        parent = None
        if self.parent_meta is not None:
            weights = resolve_weights(self.config.weights)
            parent = {"file": portable_path(weights), "sha256": file_sha256(weights),
                      "model": self.parent_meta["model"]}
        return {
            "model": getattr(model, "name", self.family),
            "model_config": config_to_dict(model) if not self.parent_meta or not self.parent_meta.get("legacy") else None,
            "legacy": bool(self.parent_meta and self.parent_meta.get("legacy")),
            "feature_names": list(self.clips.feature_names),
            "normalization": {"mean": model.feature_mean.tolist(), "std": model.feature_std.tolist()} if hasattr(model, "feature_mean") else None,
            "traits": list(TRAITS),
            "label_grid": list(LEVEL_GRID),
            "label_binning": self.clips.label_binning,
            "split": self.manifest,
            "split_sha256": manifest_hash(self.manifest),
            "data": {"files": [portable_path(p) for p in self.config.data], "fingerprint": data_fingerprint(self.clips),
                     "n_train_clips": len(self.parts["train"])},
            "epoch": epoch,
            "metrics": scores,
            "parent": parent,
            "iteration": (self.parent_meta.get("iteration", 1) + 1) if self.parent_meta else 1,
            "train_config": asdict(self.config),
        }

    def _save(self, epoch: int, scores: dict, improved: bool) -> None:
        if not self.context.is_main:
            return
        meta = self._meta(epoch, scores)
        save_checkpoint(self.model, self.out / "last.safetensors", meta)
        save_optimizer(self.optimizer, self.out / "last.optim.safetensors",
                       {"epoch": epoch, "best_score": self.best_score, "best_epoch": self.best_epoch, "history": self.history})
        if improved:
            save_checkpoint(self.model, self.out / "best.safetensors", meta)
        with open(self.out / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)

    def _finish(self) -> None:
        if not self.context.is_main or not self.history:
            return
        from .plots import plot_training_curves

        plot = plot_training_curves(self.history, self.out / "training_curves.png")
        self.log(f"best epoch {self.best_epoch} (val macro-F1 {self.best_score:.3f}); wrote {self.out}/best.safetensors, "
                 f"last.safetensors, metrics.csv, {plot.name}, split.json")


def fit(config: TrainConfig, family: str, retrain: bool = False) -> dict:
    """Train (or, with ``retrain``, fine-tune from ``config.weights``) and write the run directory."""
    return Trainer(config, family, retrain).run()
