"""Training and fine-tuning: one loop for train and retrain, single process or torchrun DDP.

``fit(config)`` reads top to bottom: load the parent (retrain only), prepare the data, build the model, loop.
Train and retrain differ in one place, ``initial_model``.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from models import config_to_dict, create_model
from models.wide import KERNEL_FEATURES

from ..checkpoint.io import (check_features, file_sha256, load_checkpoint, load_optimizer, resolve_weights, save_checkpoint,
                             save_optimizer)
from ..checkpoint.metadata import CheckpointMeta, DataRecord, Lineage
from ..checkpoint.provenance import study_for
from ..core import distributed
from ..core.clips import ClipSet
from ..core.compute import resolve_precision, show_progress
from ..core.errors import PerfexError
from ..core.metrics import trait_metrics
from ..core.paths import portable_path
from ..core.schema import BIG_FIVE, Targets
from ..data.batches import collate, rank_share, training_batches
from ..data.options import RunOptions, TrainConfig, save_run_config
from ..data.prepare import PreparedData, prepare_training_data
from ..data.splits import group_keys, manifest_hash, save_manifest
from ..infer.predict import predict_probs, window_logits
from .calibration import fit_model_temperatures
from .losses import MODEL_OUTPUT, score_loss, targets_loss, trait_loss
from .selection import EpochVerdict, SelectionState, TraitSelection
from .statistics_init import start_from_statistics
from .timing_score import timing_score_readers

EpochHook = Callable[[int, dict], None]


def data_fingerprint(clips: ClipSet) -> str:
    """Hash of clip ids, lengths, frames and labels: the same data gives the same fingerprint."""
    digest = hashlib.sha256()
    labels = [clips.levels] if clips.targets.is_big_five else [clips.levels, clips.scores]
    for array in (np.asarray(clips.ids).astype(str), clips.offsets, clips.features, *labels):
        digest.update(np.ascontiguousarray(array).tobytes() if array.dtype != object else "|".join(array).encode())
    return digest.hexdigest()[:16]


def squared_error(probs: np.ndarray, scores: np.ndarray) -> float:
    """Validation loss of ``score`` outputs: squared error of the predicted scores, summed over traits (known ones)."""
    error = (BIG_FIVE.scores(probs) - scores) ** 2
    return float(np.nansum(error, axis=1).mean())


def negative_log_likelihood(probs: np.ndarray, levels: np.ndarray, targets: Targets = BIG_FIVE) -> float:
    """Validation loss: -log p(true level) of each level target, squared error of each continuous target's
    standardised value (its labels are in ``levels``' place: pass them standardised), summed over targets, averaged
    over clips."""
    total = np.zeros(len(probs))
    for t, target in enumerate(targets):
        if target.continuous:
            total += np.nan_to_num((probs[:, t, 0] - levels[:, t]) ** 2)
        else:
            picked = np.take_along_axis(probs[:, t], levels[:, t, None].astype(np.int64), axis=1)[:, 0]
            total -= np.log(np.clip(picked, 1e-12, None))
    return float(total.mean())


def validation_predictions(context: distributed.Context, model: nn.Module, clips: ClipSet, index: np.ndarray,
                           run: RunOptions) -> tuple[np.ndarray, np.ndarray]:
    """Level probabilities of the validation clips and their clip numbers (sorted); each rank predicts a share."""
    share = index[context.rank :: context.world_size]
    bf16 = resolve_precision(run.precision, context.device) == "bf16"
    probs, _ = predict_probs(model, clips, share, batch_size=run.batch_size * 2, device=context.device, bf16=bf16)
    parts = distributed.gather_objects(context, (share, probs))
    order = np.concatenate([p[0] for p in parts])
    return np.concatenate([p[1] for p in parts])[np.argsort(order)], np.sort(order)


def gate_list(gates: np.ndarray) -> list[float] | None:
    """Gates as stored in a checkpoint's metadata: None when every gate is open (as before gates existed)."""
    return None if (np.asarray(gates) == 1).all() else [float(g) for g in gates]


def scores_of(probs: np.ndarray, levels: np.ndarray, scores: np.ndarray, output: str, targets: Targets = BIG_FIVE) -> dict:
    """Validation loss, accuracy, macro-F1, QWK and each target's headline (accuracy, or r for a continuous target) of
    the probabilities of a model's ``output``."""
    metrics = trait_metrics(levels, probs, targets=targets)
    mean = metrics["mean"]
    if output == "score":
        loss = squared_error(probs, scores)
    else:
        loss = negative_log_likelihood(probs, targets.training_labels(levels, scores), targets)
    return {
        "val_loss": loss,
        "val_accuracy": mean.get("accuracy", float("nan")),
        "val_f1_macro": mean.get("f1_macro", float("nan")),
        "val_qwk": mean.get("qwk", float("nan")),
        "val_per_trait_accuracy": {t.name: metrics["per_trait"][t.name]["pearson_r" if t.continuous else "accuracy"]
                                   for t in targets},
    }


@dataclass
class Parent:
    """The checkpoint a retrain run starts from."""

    model: nn.Module
    meta: CheckpointMeta
    weights: Path


def load_parent(config: TrainConfig) -> Parent | None:
    """The checkpoint to fine-tune (retrain), or None (train from scratch)."""
    if config.retrain is None:
        return None
    weights = resolve_weights(config.retrain.weights)
    model, meta = load_checkpoint(weights, family=config.family)
    model.set_temperatures(torch.ones(model.config.n_traits))  # the parent's calibration does not fit the new weights
    # its deep-path gates stay: retraining has no statistics start to fall back on
    return Parent(model, meta, weights)


def initial_model(config: TrainConfig, data: PreparedData, parent: Parent | None) -> tuple[nn.Module, bool]:
    """Where train and retrain differ: a fresh model normalised on the training split, its statistics path fitted
    as logistic regression (see perfex.train.statistics_init), or the parent's weights. Also returns whether the
    starting point is a candidate for best.safetensors (epoch 0)."""
    if parent is not None:
        return parent.model, False
    output = "score" if config.train.target == "continuous" else MODEL_OUTPUT[config.train.loss]
    layout = {} if data.targets.is_big_five else {"target_levels": data.targets.level_counts}
    kernels = {"kernel_features": KERNEL_FEATURES} if config.train.timing_score else {}
    model = create_model(config.family, n_features=data.clips.n_features, max_frames=config.train.max_frames, output=output,
                         **layout, **kernels)
    model.set_normalization(*data.normalization())
    started = start_from_statistics(model, data.clips, data.parts["train"], config.run.seed,
                                    data.targets)
    return model, started


def check_run_dir(out: Path, resume: bool) -> None:
    """A run directory is never overwritten: continuing it needs --resume."""
    has_run = (out / "last.safetensors").exists()
    if has_run and not resume:
        raise PerfexError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not has_run:
        raise PerfexError(f"--resume: {out} holds no last.safetensors to continue from")


def fit(config: TrainConfig, on_epoch_end: EpochHook | None = None) -> dict:
    """Train (or fine-tune, when ``config.retrain`` is set) and write the run directory."""
    context = distributed.setup(config.run.device, config.run.threads)
    log = print if context.is_main else (lambda *a, **k: None)
    check_run_dir(Path(config.train.out), config.train.resume)
    torch.manual_seed(config.run.seed)
    parent = load_parent(config)
    data = prepare_training_data(config, parent.meta if parent else None, log)
    if parent is not None:
        check_features(parent.meta, data.clips.feature_names, parent.weights)
    model, start_is_candidate = initial_model(config, data, parent)
    trainer = Trainer(config, context, model, data, parent, log, start_is_candidate)
    result = trainer.run(on_epoch_end)
    distributed.teardown(context)
    return result


class Trainer:
    """The epoch loop of one run: optimiser, early stopping, checkpoints and the run directory's files."""

    def __init__(self, config: TrainConfig, context: distributed.Context, model: nn.Module, data: PreparedData,
                 parent: Parent | None, log: Callable[[str], None], start_is_candidate: bool = False) -> None:
        self.config, self.context, self.data, self.parent, self.log = config, context, data, parent, log
        self.targets = data.targets
        self.start_is_candidate = start_is_candidate
        self.out = Path(config.train.out)
        self.model = model.to(context.device)
        freeze = config.retrain is not None and config.retrain.freeze_encoder
        params = self.model.freeze_encoder() if freeze else list(self.model.parameters())
        if start_is_candidate:  # the statistics path stays the fitted logistic regression: a closed gate is the start
            self.model.statistics.requires_grad_(False)
            params = [p for p in params if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.train.lr, weight_decay=config.train.weight_decay)
        self.bf16 = resolve_precision(config.run.precision, context.device) == "bf16"
        self.engine = self.model
        if context.distributed:
            ids = [context.local_rank] if context.device.type == "cuda" else None
            self.engine = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.study = next(filter(None, map(study_for, config.data.data)), None)  # retrain on a user study's ratings
        self.loss = {"corn": "ordinal", "score": "score"}.get(model.config.output, "ce")
        self.history: list[dict] = []
        self.start_epoch = 1
        fixed = None if start_is_candidate else model.deep_gate.cpu().numpy()
        self.selection = TraitSelection(config.train.select, model.config.output, model.config.n_traits, fixed_gates=fixed,
                                        targets=self.targets)
        self.val_groups = group_keys(data.clips)
        if config.train.resume:
            self._resume()

    @property
    def best_epoch(self) -> int:
        return self.selection.state.best_epoch

    @property
    def best_score(self) -> float | None:
        return self.selection.state.best_score

    def _resume(self) -> None:
        self.model.load_state_dict(load_checkpoint(self.out / "last.safetensors")[0].state_dict())
        state = load_optimizer(self.optimizer, self.out / "last.optim.safetensors")
        self.start_epoch = state["epoch"] + 1
        self.history = state["history"]
        if "selection" not in state:
            raise PerfexError(f"--resume: {self.out} was started by an older PerFeX whose model selection differs; "
                              "start a new run with another --out")
        self.selection.state = SelectionState(**state["selection"])
        if self.start_is_candidate:
            self._validate_start()
        self.log(f"resuming {self.out} after epoch {state['epoch']} (best so far: epoch {self.best_epoch})")

    def _validate_start(self) -> None:
        """Validation probabilities of the statistics start (the model with every deep-path gate closed), on resume."""
        self.model.set_deep_gates(torch.zeros(self.model.config.n_traits))
        self._set_start(*validation_predictions(self.context, self.model, self.data.clips, self.data.parts["val"], self.config.run))
        self.model.set_deep_gates(torch.ones(self.model.config.n_traits))

    def _set_start(self, probs: np.ndarray, order: np.ndarray) -> None:
        self.selection.set_start(probs, self.data.clips.levels[order], self.data.clips.scores[order])

    def run(self, on_epoch_end: EpochHook | None = None) -> dict:
        """Epochs until ``--epochs``, or until no trait has improved its validation score for ``--patience`` epochs; then
        calibration."""
        c = self.config.train
        self._write_run_files()
        if self.start_epoch == 1 and self.start_is_candidate:
            row, scores = self._evaluate(0, None)  # the starting point (logistic regression) competes too
            self._set_start(*self.last_validation)
            self.log(f"epoch 0 is the statistics path alone (logistic regression); each trait opens its deep-path gate "
                     f"only where the deep path beats it on that trait's validation {c.select} by more than one "
                     "bootstrap standard error")
            if c.timing_score:
                readers = timing_score_readers(self.model, self.data.targets)
                self.log(f"the start reads the kernels' timing score for: {', '.join(readers)}" if readers else
                         "no target's start reads the kernels' timing score (cross-validation); the kernels were dropped")
            self._record(0, row, scores)
        for epoch in range(self.start_epoch, c.epochs + 1):
            self._record(epoch, *self._epoch(epoch))
            if on_epoch_end is not None:
                on_epoch_end(epoch, self.history[-1])
            if self.selection.should_stop(c.patience):
                self.log(f"early stop: no trait improved its validation {c.select} for {c.patience} epochs")
                break
        self._finish()
        return {"best_epoch": self.best_epoch, "best_score": self.best_score, "run_dir": str(self.out)}

    def _record(self, epoch: int, row: dict, scores: dict) -> None:
        """Judge an epoch trait by trait (see perfex.train.selection), keep its row, save last (and best) checkpoints."""
        clips, (probs, order) = self.data.clips, self.last_validation
        verdict = self.selection.update(epoch, probs, clips.levels[order], clips.scores[order], self.val_groups[order],
                                        self.config.run.seed * 1000 + epoch)
        name = self.config.train.select
        sign = -1.0 if name == "loss" else 1.0  # the loss is stored as a loss (lower is better)
        row = {**row, f"val_gated_{name}": sign * verdict.score,
               **{f"val_{name}_{t}": sign * float(v) for t, v in zip(self.targets.names, verdict.trait_scores)},
               **{f"deep_{t}": int(g) for t, g in zip(self.targets.names, verdict.gates)},
               **{f"gain_z_{t}": float(z) for t, z in zip(self.targets.names, verdict.gain_z)}}
        self._adjust_learning_rate()
        self.history.append(row)
        self._save(epoch, scores, verdict.improved, verdict.gates)
        self._log_epoch(row, scores, verdict)

    def _adjust_learning_rate(self) -> None:
        """Halve the learning rate each time ``--lr-patience`` epochs pass in which no trait improved its validation score."""
        patience, since = self.config.train.lr_patience, min(self.selection.state.trait_since)
        if patience and since and since % patience == 0:
            for group in self.optimizer.param_groups:
                group["lr"] /= 2
            self.log(f"learning rate halved to {self.optimizer.param_groups[0]['lr']:.2g} (no trait improved its validation "
                     f"{self.config.train.select} for {since} epochs)")

    def _evaluate(self, epoch: int, training: tuple[float, int] | None, started: float | None = None) -> tuple[dict, dict]:
        """Validate; the row's time counts from ``started`` (the epoch's start) when given."""
        started = time.perf_counter() if started is None else started
        clips = self.data.clips
        probs, order = validation_predictions(self.context, self.model, clips, self.data.parts["val"], self.config.run)
        self.last_validation = probs, order
        scores = scores_of(probs, clips.levels[order], clips.scores[order], self.model.config.output, self.targets)
        train_loss, n_clips = training or (float("nan"), 0)
        seconds = time.perf_counter() - started
        row = {"epoch": epoch, "train_loss": train_loss, **{k: v for k, v in scores.items() if k != "val_per_trait_accuracy"},
               "lr": self.optimizer.param_groups[0]["lr"], "seconds": seconds, "train_clips_per_s": n_clips / seconds}
        return row, scores

    def _epoch(self, epoch: int) -> tuple[dict, dict]:
        started = time.perf_counter()
        return self._evaluate(epoch, self._train_epoch(epoch), started)

    def _log_epoch(self, row: dict, scores: dict, verdict: EpochVerdict) -> None:
        name = self.config.train.select
        per_trait = " ".join(f"{t[:4]} {scores['val_per_trait_accuracy'][t]:.2f}/{row[f'val_{name}_{t}']:.3f}"
                             f"{'*' if better else ''}{'+deep' if row[f'deep_{t}'] else ''}"
                             for t, better in zip(self.targets.names, verdict.trait_improved))
        self.log(f"epoch {row['epoch']:3d}  train_loss {row['train_loss']:.3f}  val_loss {row['val_loss']:.3f}  "
                 f"val_acc {row['val_accuracy']:.3f}  val_qwk {row['val_qwk']:.3f}  gated val_{name} "
                 f"{row[f'val_gated_{name}']:.3f}{'  *best' if verdict.improved else ''}\n"
                 f"           per target acc (r if continuous)/{name} (* its best so far, +deep: gate open): {per_trait}")

    @torch.enable_grad()
    def _train_epoch(self, epoch: int) -> tuple[float, int]:
        run, clips = self.config.run, self.data.clips
        train_index = self.data.parts["train"]
        share = train_index[rank_share(len(train_index), epoch, run.seed, self.context.rank, self.context.world_size)]
        rng = np.random.default_rng([run.seed, epoch, self.context.rank])
        torch.manual_seed(int(rng.integers(2**62)))  # dropout depends on (seed, epoch, rank) only: resume is exact
        pad_to = self.model.fixed_length
        plan = training_batches(clips, share, run.batch_size, self.config.train.max_frames, rng, pad_to=pad_to,
                                min_crop=self.config.train.min_crop)
        self._record_samples(share)
        loader = torch.utils.data.DataLoader(plan, batch_size=None, num_workers=run.workers,
                                             collate_fn=lambda p: collate(clips, *p, pad_to=pad_to))
        self.engine.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch}", unit="batch", leave=False, disable=not (show_progress(run.progress) and self.context.is_main))
        for batch in bar:
            batch = batch.to(self.context.device)
            with torch.autocast(self.context.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.engine(batch.x, batch.lengths, batch.times)
            loss = self._loss(logits, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch.lengths)
            count += len(batch.lengths)
            bar.set_postfix(loss=f"{total / count:.3f}")
        return distributed.mean_across_ranks(self.context, total / max(count, 1), count), count * self.context.world_size

    def _loss(self, logits: torch.Tensor, batch) -> torch.Tensor:
        """The batch's training loss: the Big Five's (levels or ``score``) or, for other targets, ``targets_loss``."""
        if self.loss == "score":
            return score_loss(logits, batch.scores)
        if self.targets.is_big_five:
            return trait_loss(logits, batch.levels, self.loss)
        return targets_loss(logits, batch.levels, batch.scores, self.targets, self.loss)

    def _record_samples(self, share: np.ndarray) -> None:
        if self.config.train.record_samples:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / f"samples_rank{self.context.rank}.txt", "a") as handle:
                handle.write(" ".join(str(self.data.clips.ids[i]) for i in share) + "\n")

    def _meta(self, epoch: int, scores: dict) -> CheckpointMeta:
        """The metadata of the model as it is now (its current deep-path gates included)."""
        model, clips, parent = self.model, self.data.clips, self.parent
        legacy = bool(parent and parent.meta.legacy)
        lineage = Lineage(study=self.study)
        if parent is not None:
            lineage = Lineage(parent={"file": portable_path(parent.weights), "sha256": file_sha256(parent.weights),
                                      "model": parent.meta.model}, iteration=parent.meta.lineage.iteration + 1, study=self.study)
        data = self.config.data
        return CheckpointMeta(
            model=model.name, model_config=None if legacy else config_to_dict(model), legacy=legacy,
            feature_names=list(clips.feature_names),
            normalize=parent.meta.normalize if parent else self.config.data.normalize,
            provenance=parent.meta.provenance if parent else (clips.provenance.as_dict() if clips.provenance else None),
            normalization={"mean": model.feature_mean.tolist(), "std": model.feature_std.tolist()} if model.normalizes else None,
            label_binning=clips.label_binning, split=self.data.manifest, split_sha256=manifest_hash(self.data.manifest),
            data=DataRecord(files=[portable_path(p) for p in data.data], labels=portable_path(data.labels) if data.labels else None,
                            fingerprint=data_fingerprint(clips), n_train_clips=len(self.data.parts["train"])),
            epoch=epoch, metrics=scores, lineage=lineage, run_config=asdict(self.config),
            deep_gates=gate_list(model.deep_gate.cpu().numpy()),
            **({} if self.targets.is_big_five else {"targets": self.targets.as_list(), "traits": list(self.targets.names),
                                                    "label_grid": []}),
        )

    def _write_run_files(self) -> None:
        if not self.context.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        save_manifest(self.data.manifest, self.out / "split.json")
        save_run_config(self.config, self.out / "run_config.json")
        skipped = self.data.skipped
        if len(skipped):
            with open(self.out / "skipped_clips.csv", "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["ID", "File", "n_frames", "reason"])
                for i in range(len(skipped)):
                    writer.writerow([skipped.ids[i], skipped.files[i], skipped.lengths[i],
                                     f"fewer than {self.config.data.min_frames} frames"])

    def _save(self, epoch: int, scores: dict, improved: bool, gates: np.ndarray) -> None:
        if not self.context.is_main:
            return
        meta = self._meta(epoch, scores)
        save_checkpoint(self.model, self.out / "last.safetensors", meta)
        save_optimizer(self.optimizer, self.out / "last.optim.safetensors",
                       {"epoch": epoch, "best_score": self.best_score, "best_epoch": self.best_epoch,
                        "selection": self.selection.state.as_dict(), "history": self.history})
        if improved:
            save_checkpoint(self.model, self.out / "best.safetensors", replace(meta, deep_gates=gate_list(gates)))
        with open(self.out / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.history[0]))
            writer.writeheader()
            writer.writerows(self.history)

    def _finish(self) -> None:
        if not self.context.is_main or not self.history:
            return
        from ..core.plots import plot_training_curves

        plot = plot_training_curves(self.history, self.out / "training_curves.png", best_by=f"val_gated_{self.config.train.select}")
        if self.config.train.calibrate and self.loss != "score":
            self._calibrate_best()
        gates = self.selection.state.best_gates
        if gates is not None and self.start_is_candidate:
            deep = [t for t, g in zip(self.targets.names, gates) if g]
            alone = [t for t, g in zip(self.targets.names, gates) if not g]
            self.log(f"deep path kept for: {', '.join(deep) or 'no trait'}"
                     + (f"; statistics path alone for: {', '.join(alone)}" if alone else ""))
        self.log(f"best epoch {self.best_epoch} (gated validation {self.config.train.select}); wrote {self.out}/best.safetensors, "
                 f"last.safetensors, metrics.csv, {plot.name}, split.json, run_config.json")

    def _calibrate_best(self) -> None:
        """Fit one temperature per level target on the validation split for the best weights and store them with it."""
        best = self.out / "best.safetensors"
        model, meta = load_checkpoint(best, map_location=str(self.context.device))
        val = self.data.parts["val"]
        logits, positions = window_logits(model, self.data.clips, val, self.config.run.batch_size * 2, self.context.device)
        levels = self.data.clips.levels[val][positions]
        labels = self.targets.training_labels(levels, self.data.clips.scores[val][positions])

        def nll() -> float:
            return negative_log_likelihood(model.level_probabilities(torch.from_numpy(logits)).numpy(), labels, self.targets)
        before = nll()
        temperatures = fit_model_temperatures(model, logits, levels, self.targets)
        model.set_temperatures(temperatures)
        after = nll()
        save_checkpoint(model, best, replace(meta, temperatures=[float(t) for t in temperatures],
                                             metrics={**meta.metrics, "val_nll_uncalibrated": before, "val_nll_calibrated": after}))
        self.log(f"calibration: temperatures {', '.join(f'{t:.2f}' for t in temperatures)}; validation NLL {before:.3f} -> {after:.3f}")
