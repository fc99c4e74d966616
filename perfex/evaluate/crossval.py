"""K-fold cross-validation by source video (``train --folds K``): every fold is a normal training run.

``run_crossval(config)`` reads top to bottom: load the clips, deal whole source videos into K folds, write each fold's
split manifest (its held-out fold is the manifest's ``test`` part), train each fold through ``fit``, predict its
held-out clips beside the baselines, then write the out-of-fold predictions and the report.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..checkpoint.io import load_checkpoint, read_config
from ..core.clips import ClipSet
from ..core.compute import resolve_precision
from .crossval_report import FoldResult, cv_report, pooled, score_fold, write_report
from ..core.distributed import pick_device
from ..core.errors import PerfexError
from .evaluation import strict_json
from ..core.metrics import BASELINE_NAMES, BASELINES_BY_KIND, HEADLINE_METRICS, baseline_predictions, clip_summary_features
from ..data.options import TrainConfig, flatten, save_run_config
from ..infer.predict import predict_probs
from ..data.prepare import originals_only_in_evaluation, training_clips
from .report import METRIC_TITLES, fmt
from ..core.schema import N_LEVELS, Targets
from ..data.splits import SPLIT_NAMES, group_keys, make_split, save_manifest, split_indices
from ..train.loop import fit

STRATIFIED_BY = "each video's mean trait level, rounded"
LEVEL_STRATA = "each video's mean level value k/(K-1) over its clips and level targets, rounded to {n} strata"
QUANTILE_STRATA = ("{n} quantile bins of each video's mean continuous label (standardised, averaged over the "
                   "continuous targets)")
N_QUANTILE_STRATA = 5


def check_cv_dir(out: Path) -> None:
    """A run directory is never overwritten, and a cross-validation run cannot be resumed."""
    held = [out / "folds.json", out / "last.safetensors", *out.glob("fold_*/last.safetensors")]
    if any(path.exists() for path in held):
        raise PerfexError(f"{out} already holds a run; choose another --out (a cross-validation run cannot be resumed)")


def video_strata(clips: ClipSet, video_of_clip: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, str]:
    """Each video's stratum and how strata were made: the rounded mean level (on the grid of the level targets, the
    most levels' scale), or for continuous targets only, quantile bins of the videos' mean standardised label."""
    targets = clips.targets
    levelled = [t for t, target in enumerate(targets) if not target.continuous]
    if targets.is_big_five:
        per_clip, top, how = clips.levels.mean(axis=1), N_LEVELS - 1, STRATIFIED_BY
    elif levelled:
        top = max(targets[t].levels for t in levelled) - 1
        steps = np.array([targets[t].levels - 1 for t in levelled], dtype=np.float64)
        per_clip, how = (clips.levels[:, levelled] / steps).mean(axis=1) * top, LEVEL_STRATA.format(n=top + 1)
    else:
        values = targets.with_standardisation(clips.scores).standardised(clips.scores)
        means = np.bincount(video_of_clip, weights=values.mean(axis=1)) / sizes
        ranks = np.argsort(np.argsort(means, kind="stable"), kind="stable")
        n_bins = min(N_QUANTILE_STRATA, len(means))
        return ranks * n_bins // len(means), QUANTILE_STRATA.format(n=n_bins)
    return np.rint(np.bincount(video_of_clip, weights=per_clip) / sizes).astype(np.int64), how


def assign_folds(clips: ClipSet, keys: np.ndarray, n_folds: int, seed: int) -> dict[str, int]:
    """Fold (1..K) of every source video: videos in order of stratum (``video_strata``), largest first, ties in seeded
    random order; each goes to the fold holding the fewest clips of its stratum, then the fewest clips."""
    videos, video_of_clip = np.unique(keys, return_inverse=True)
    if n_folds > len(videos):
        raise PerfexError(f"--folds {n_folds} is more than the {len(videos)} source videos in the data; use at most "
                          f"{len(videos)} (each fold holds out whole videos)")
    sizes = np.bincount(video_of_clip)
    strata, _ = video_strata(clips, video_of_clip, sizes)
    order = np.random.default_rng(seed).permutation(len(videos))
    order = order[np.lexsort((-sizes[order], strata[order]))]
    filled = np.zeros((n_folds, max(int(strata.max()) + 1, N_LEVELS)))  # clips per fold and stratum
    assignment = {}
    for video in order:
        fold = min(range(n_folds), key=lambda f: (filled[f, strata[video]], filled[f].sum()))
        filled[fold, strata[video]] += sizes[video]
        assignment[str(videos[video])] = fold + 1
    return assignment


def stratified_by(clips: ClipSet, keys: np.ndarray) -> str:
    """How ``assign_folds`` stratified these clips' videos, in words."""
    _, video_of_clip = np.unique(keys, return_inverse=True)
    return video_strata(clips, video_of_clip, np.bincount(video_of_clip))[1]


def fold_manifest(clips: ClipSet, keys: np.ndarray, fold_of_clip: np.ndarray, fold: int, config: TrainConfig) -> dict:
    """The split manifest of one fold's run: the fold's videos are ``test``; a seeded ``--val-fraction`` of the other
    folds' videos is ``val``, the rest ``train``."""
    val_fraction, n_folds = config.train.val_fraction, config.train.folds
    others = clips.subset(np.flatnonzero(fold_of_clip != fold))
    manifest = make_split(others, (1 - val_fraction, val_fraction, 0.0), seed=config.run.seed + fold)
    if not manifest["train"]:
        raise PerfexError(f"--folds {n_folds} leaves fold {fold} only {len(manifest['val'])} training video(s), all taken "
                          "for validation; use fewer --folds or a smaller --val-fraction")
    manifest["test"] = sorted(set(keys[fold_of_clip == fold]))
    n_videos = sum(len(manifest[name]) for name in SPLIT_NAMES)
    return {**manifest, "fractions": [len(manifest[name]) / n_videos for name in SPLIT_NAMES], "fold": fold, "folds": n_folds}


def folds_record(clips: ClipSet, keys: np.ndarray, fold_of_clip: np.ndarray, config: TrainConfig) -> dict:
    """The fold assignment as ``folds.json`` stores it: the videos and clip ids of every fold."""
    folds = [{"fold": fold, "videos": sorted(set(keys[fold_of_clip == fold])), "clips": clips.ids[fold_of_clip == fold].tolist()}
             for fold in range(1, config.train.folds + 1)]
    return {"format": "perfex-folds", "version": 1, "seed": config.run.seed, "group_by": "source video",
            "stratified_by": stratified_by(clips, keys), "folds": folds}


def predict_held_out(run_dir: Path, clips: ClipSet, index: np.ndarray, config: TrainConfig,
                     targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    """Outputs [N, targets, L] and scores [N, targets] (``targets.scores``) of the fold's best (calibrated) weights on
    its held-out clips."""
    device = pick_device(config.run.device)
    model, _ = load_checkpoint(run_dir / "best.safetensors", map_location=str(device))
    bf16 = resolve_precision(config.run.precision, device) == "bf16"
    probs, _ = predict_probs(model, clips, index, batch_size=config.run.batch_size * 2, device=device, bf16=bf16)
    return probs, targets.scores(probs)


def run_fold(clips: ClipSet, fold_of_clip: np.ndarray, fold: int, manifest: dict, config: TrainConfig) -> FoldResult:
    """Train the fold's network in ``OUT/fold_k`` on its manifest, then score it and the baselines on the held-out fold
    (continuous targets in the units of the fold's own standardisation, read from its checkpoint)."""
    run_dir = Path(config.train.out) / f"fold_{fold}"
    save_manifest(manifest, run_dir / "split.json")
    trained = fit(replace(config, train=replace(config.train, out=str(run_dir), split=str(run_dir / "split.json"), folds=None)))
    targets = read_config(run_dir / "best.safetensors").target_set
    parts, _ = originals_only_in_evaluation(clips, split_indices(clips, manifest))
    held_out, training = parts["test"], np.flatnonzero(fold_of_clip != fold)
    predictions = {config.family: predict_held_out(run_dir, clips, held_out, config, targets)}
    predictions.update(baseline_predictions(clips.levels[training], clips.scores[training],
                                            clip_summary_features(clips.subset(training)),
                                            clip_summary_features(clips.subset(held_out)), config.run.seed, targets))
    info = {"fold": fold, "run_dir": run_dir.name, "n_test_videos": len(manifest["test"]), "n_test_clips": len(held_out),
            "n_train_clips": len(parts["train"]), "n_val_clips": len(parts["val"])}
    return score_fold(fold, held_out, predictions, clips.levels, clips.scores, info, trained["best_epoch"], clips.targets)


def fold_line(result: FoldResult, config: TrainConfig, targets: Targets) -> str:
    """The log's one line about a finished fold (per target, the network's headline metrics of its kind)."""
    info, network = result.info, result.metrics[config.family]
    head = (f"fold {result.fold}/{config.train.folds}: {info['n_test_clips']} held-out clip(s) of {info['n_test_videos']} "
            f"video(s); {config.family} ")
    where = f" [{config.train.out}/{info['run_dir']}]"
    if not targets.is_big_five:
        per_target = "; ".join(f"{t.name} " + ", ".join(f"{METRIC_TITLES[m]} {fmt(network['per_trait'][t.name][m])}"
                                                        for m in HEADLINE_METRICS[t.kind]) for t in targets)
        return f"{head}{per_target} (best epoch {result.best_epoch}){where}"
    accuracy = {name: m["mean"]["accuracy"] for name, m in result.metrics.items()}
    baselines = ", ".join(f"{name} {fmt(accuracy[name])}" for name in BASELINE_NAMES)
    return (f"{head}accuracy {fmt(accuracy[config.family])}, QWK {fmt(network['mean']['qwk'])} (best epoch "
            f"{result.best_epoch}); baselines' accuracy: {baselines}{where}")


def oof_table(clips: ClipSet, keys: np.ndarray, fold_of_clip: np.ndarray, results: list[FoldResult],
              network: str) -> pd.DataFrame:
    """One row per held-out clip in data order: per target its true value, the network's prediction and each baseline's
    that applies to its kind. A level target's levels are grid values k/(K-1) (0, .25, ... 1 for the Big Five, like
    predictions.csv) with the network's expected score in ``_score``; a continuous target's values are in its units."""
    index, probs, scores = pooled(results, network)
    order = np.argsort(index)
    index, probs, scores = index[order], probs[order], scores[order]
    baselines = {name: tuple(part[order] for part in pooled(results, name)[1:]) for name in BASELINE_NAMES}
    table = pd.DataFrame({"ID": clips.ids[index], "File": clips.files[index], "source_video": keys[index],
                          "fold": fold_of_clip[index]})
    for t, target in enumerate(clips.targets):
        name, step = target.name, max(target.levels - 1, 1)
        if target.continuous:
            table[f"{name}_true"], table[f"{name}_pred"] = clips.scores[index, t], scores[:, t]
        else:
            table[f"{name}_true"] = clips.levels[index, t] / step
            table[f"{name}_pred"] = probs[:, t, : target.levels].argmax(axis=1) / step
            table[f"{name}_score"] = scores[:, t]
        for baseline in BASELINES_BY_KIND[target.kind]:
            outputs, values = baselines[baseline]
            table[f"{name}_{baseline}"] = (values[:, t] if target.continuous
                                           else outputs[:, t, : target.levels].argmax(axis=1) / step)
    return table


def run_crossval(config: TrainConfig) -> dict:
    """Train a network per fold in ``OUT/fold_k``; write ``folds.json``, ``oof_predictions.csv`` and ``cv_report.json``
    and ``.md`` in ``OUT``; print the report."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise PerfexError("--folds trains its folds one after another in one process; start it with python, not torchrun")
    out, n_folds = Path(config.train.out), config.train.folds
    check_cv_dir(out)
    clips, skipped = training_clips(config, None, lambda message: None)
    keys = group_keys(clips)
    assignment = assign_folds(clips, keys, n_folds, config.run.seed)
    fold_of_clip = np.array([assignment[key] for key in keys])
    manifests = [fold_manifest(clips, keys, fold_of_clip, fold, config) for fold in range(1, n_folds + 1)]
    record = folds_record(clips, keys, fold_of_clip, config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds.json").write_text(json.dumps(strict_json(record), indent=1) + "\n")
    save_run_config(config, out / "run_config.json")
    print(f"cross-validation: {n_folds} folds of {len(assignment)} source videos ({len(clips)} clips) -> {out}")
    results = []
    for fold, manifest in enumerate(manifests, start=1):
        results.append(run_fold(clips, fold_of_clip, fold, manifest, config))
        print(fold_line(results[-1], config, clips.targets))
    oof_table(clips, keys, fold_of_clip, results, config.family).to_csv(out / "oof_predictions.csv", index=False)
    settings = {"folds": n_folds, "seed": config.run.seed, "val_fraction": config.train.val_fraction,
                "stratified_by": record["stratified_by"], "n_videos": len(assignment), "n_clips": len(clips),
                "n_skipped_short": len(skipped), "baselines_fitted_on": "all clips of the other folds",
                "options": flatten(config)}
    report = cv_report(config.family, results, clips.levels, clips.scores, settings, record, clips.targets)
    markdown = write_report(out, report)
    print(f"\n{markdown}\nwrote {out}/oof_predictions.csv, cv_report.json, cv_report.md, folds.json and fold_1..{n_folds}/")
    return report
