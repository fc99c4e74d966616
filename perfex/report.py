"""Test: evaluate a checkpoint on the held-out split beside three baselines; write JSON, Markdown and plots."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .checkpoint import check_features, load_checkpoint, locate
from .clips import ClipSet
from .distributed import pick_device
from .errors import PerfexError
from .evaluate import clip_summary_features, evaluate_with_baselines, results_markdown
from .io import load_labelled
from .predict import predict_probs
from .schema import TRAITS
from .splits import group_keys, load_manifest, split_indices

SUBSETS = ("test", "val", "train", "all")


@dataclass
class EvalConfig:
    """Options of one test run."""

    weights: str
    out: str
    data: list[str] | None = None
    labels: str | None = None
    split: str | None = None
    subset: str = "test"
    train_data: list[str] | None = None
    batch_size: int = 64
    device: str = "cpu"
    min_frames: int = 40
    n_boot: int = 1000
    seed: int = 0
    nan_policy: str = "error"
    min_confidence: float = 0.8
    label_binning: str | None = None
    cache_dir: str | None = None
    amp: bool = False
    progress: bool = True


def _load(paths: list[str], config: EvalConfig, features: tuple[str, ...]) -> ClipSet:
    """Labelled clips long enough to evaluate; the ones below --min-frames are named on stderr, not lost silently."""
    clips = load_labelled(paths, config, features)
    short = clips.lengths < config.min_frames
    if short.any():
        ids = ", ".join(map(str, clips.ids[short][:5]))
        print(f"not evaluating {int(short.sum())} clip(s) shorter than --min-frames {config.min_frames} (e.g. {ids})", file=sys.stderr)
    return clips.subset(np.flatnonzero(~short))


def evaluation_sets(config: EvalConfig, meta: dict) -> tuple[ClipSet, ClipSet, str]:
    """(clips to evaluate, training clips for the baselines, description of where they came from)."""
    if config.subset not in SUBSETS:
        raise PerfexError(f"--subset {config.subset!r} is not one of {', '.join(SUBSETS)}")
    features = tuple(meta["feature_names"])
    if config.label_binning is None and meta.get("label_binning") not in (None, "grid"):
        config.label_binning = meta["label_binning"]  # bin test labels exactly as the training labels were
    data = config.data or [str(locate(p)) for p in meta.get("data", {}).get("files", [])]
    if not data:
        raise PerfexError("no --data given and the checkpoint records no training data; pass --data with labelled clips")
    clips = _load(data, config, features)
    manifest = load_manifest(config.split) if config.split else meta.get("split")
    if config.subset == "all":
        evaluated, source = clips, f"all {len(clips)} clips of {', '.join(map(str, data))}"
        train_candidates = None
    else:
        if manifest is None:
            raise PerfexError("these weights carry no split manifest; pass --split split.json or --subset all (only for data the model never saw)")
        parts = split_indices(clips, manifest)
        evaluated = clips.subset(parts[config.subset])
        source = f"the {config.subset} split ({len(evaluated)} clips, source videos disjoint from training) of {', '.join(map(str, data))}"
        train_candidates = clips.subset(parts["train"])
    if len(evaluated) == 0:
        raise PerfexError(f"no clip to evaluate in {source}; check --data, --split and --subset")
    if config.train_data or train_candidates is None or len(train_candidates) == 0:
        train_files = config.train_data or [str(locate(p)) for p in meta.get("data", {}).get("files", [])]
        if not train_files:
            raise PerfexError("the baselines need training clips: pass --train-data with the data the model was trained on")
        train_all = _load(train_files, config, features)
        train_parts = split_indices(train_all, manifest) if manifest else None
        train_candidates = train_all.subset(train_parts["train"]) if train_parts else train_all
    overlap = set(group_keys(evaluated)) & set(group_keys(train_candidates))
    if overlap and config.subset != "train":
        raise PerfexError(f"{len(overlap)} source video(s) (e.g. {sorted(overlap)[0]!r}) are in both the evaluated and the training clips")
    return evaluated, train_candidates, source


def strict_json(value: object) -> object:
    """Replace NaN/inf by None and numpy scalars by Python numbers so the JSON is valid everywhere."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def run_test(config: EvalConfig, family: str) -> dict:
    """Evaluate ``config.weights`` and write results.json, results.md, predictions.csv and confusion matrices."""
    from .plots import plot_confusion_matrices, plot_confusion_matrix_per_trait

    device = pick_device(config.device)
    model, meta = load_checkpoint(config.weights, family=family, map_location=str(device))
    evaluated, train, source = evaluation_sets(config, meta)
    check_features(meta, evaluated.feature_names, config.weights)
    probs, _ = predict_probs(model, evaluated, batch_size=config.batch_size, device=device, amp=config.amp, progress=config.progress)
    results = evaluate_with_baselines(
        evaluated.levels, probs, evaluated.scores, train.levels, train.scores,
        clip_summary_features(train), clip_summary_features(evaluated),
        groups=group_keys(evaluated), n_boot=config.n_boot, seed=config.seed,
    )
    results["evaluated_on"] = source
    results["weights"] = str(config.weights)
    results["model_name"] = meta["model"]
    results["label_binning"] = {"weights": meta.get("label_binning"), "data": evaluated.label_binning}
    results["n_baseline_train_clips"] = len(train)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(strict_json(results), indent=1, allow_nan=False) + "\n")
    markdown = results_markdown(results, meta["model"])
    (out / "results.md").write_text(f"Evaluated on {source}.\n\n{markdown}\n")
    predicted = probs.argmax(axis=2)
    table = pd.DataFrame({"ID": evaluated.ids, "File": evaluated.files})
    for t, trait in enumerate(TRAITS):
        table[f"{trait}_true"] = evaluated.levels[:, t] / 4
        table[f"{trait}_pred"] = predicted[:, t] / 4
    table.to_csv(out / "predictions.csv", index=False)
    plot_confusion_matrices(evaluated.levels, predicted, out / "confusion_matrices.png", title=f"{meta['model']}: {config.subset} split")
    plot_confusion_matrix_per_trait(evaluated.levels, predicted, out)
    results["markdown"] = markdown
    return results
