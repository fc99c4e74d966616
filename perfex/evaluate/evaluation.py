"""Test a checkpoint: evaluate it on held-out clips beside the baselines; write JSON, Markdown, predictions and plots."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..checkpoint.io import check_features, load_checkpoint, read_config
from ..core.clips import ClipSet
from ..core.compute import resolve_precision, show_progress, use_threads
from ..core.distributed import pick_device
from ..core.errors import PerfexError
from ..checkpoint.metadata import CheckpointMeta
from ..core.metrics import clip_summary_features, evaluate_with_baselines, trait_metrics
from ..core.schema import BIG_FIVE, Targets
from ..data.options import DataOptions, TestConfig
from ..core.paths import locate
from ..infer.predict import clip_probabilities, predict_probs, window_logits
from ..data.prepare import load_labelled, originals_only_in_evaluation, split_off_short
from .report import results_markdown
from ..data.splits import group_keys, load_manifest, split_indices


def _load(paths: list[str], data: DataOptions, meta: CheckpointMeta) -> ClipSet:
    """Labelled clips long enough to evaluate; the ones below --min-frames are named on stderr, not lost silently."""
    clips, short = split_off_short(load_labelled(paths, data, meta), data.min_frames)
    if len(short):
        ids = ", ".join(map(str, short.ids[:5]))
        print(f"not evaluating {len(short)} clip(s) shorter than --min-frames {data.min_frames} (e.g. {ids})", file=sys.stderr)
    return clips


def data_as_trained(config: TestConfig, meta: CheckpointMeta) -> DataOptions:
    """The run's data options, with what the checkpoint records filling what the user left out: the data files,
    their labels table and the label binning (test labels are binned exactly as the training labels were)."""
    recorded = meta.data
    data = replace(config.data)
    if not data.data:
        data.data = [str(locate(p)) for p in (recorded.files if recorded else [])]
        if data.labels is None and recorded is not None and recorded.labels:
            data.labels = str(locate(recorded.labels))
    if data.label_binning is None and meta.label_binning not in (None, "grid"):
        data.label_binning = meta.label_binning
    if not data.data:
        raise PerfexError("no --data given and the checkpoint records no training data; pass --data with labelled clips")
    return data


def evaluation_sets(config: TestConfig, meta: CheckpointMeta) -> tuple[ClipSet, ClipSet, str]:
    """(clips to evaluate, training clips for the baselines, description of where they came from)."""
    test = config.test
    data = data_as_trained(config, meta)
    clips = _load(data.data, data, meta)
    chain = lineage_chain(meta)
    manifest = load_manifest(test.split) if test.split else covering_manifest(clips, chain)
    train_candidates, n_copies = None, 0
    if test.subset == "all":
        evaluated, source = clips, f"all {len(clips)} clips of {', '.join(map(str, data.data))}"
    else:
        if manifest is None:
            raise PerfexError("the data's source videos are in no split manifest of these weights or their parents; pass "
                              "--split <run>/split.json, or --subset all (only for data the model never saw)")
        parts, n_copies = originals_only_in_evaluation(clips, split_indices(clips, manifest))
        evaluated = clips.subset(parts[test.subset])
        source = f"the {test.subset} split ({len(evaluated)} clips, source videos disjoint from training) of {', '.join(map(str, data.data))}"
        if n_copies and test.subset != "train":
            source += f"; {n_copies} augmented copies of evaluation videos set aside (original clips only)"
        train_candidates = clips.subset(parts["train"])
    if len(evaluated) == 0:
        raise PerfexError(f"no clip to evaluate in {source}; check --data, --split and --subset")
    if test.train_data or train_candidates is None or len(train_candidates) == 0:
        train_candidates = _baseline_training_clips(config, meta, data, chain)
    overlap = set(group_keys(evaluated)) & set(group_keys(train_candidates))
    if overlap and test.subset != "train":
        raise PerfexError(f"{len(overlap)} source video(s) (e.g. {sorted(overlap)[0]!r}) are in both the evaluated and the training clips")
    return evaluated, train_candidates, source


def _baseline_training_clips(config: TestConfig, meta: CheckpointMeta, data: DataOptions, chain: list[CheckpointMeta]) -> ClipSet:
    """Training clips for the baselines: --train-data, else the checkpoint's training data; the train split of the
    manifest (of these weights or a parent's) that covers them, else all of them."""
    files = config.test.train_data or [str(locate(p)) for p in (meta.data.files if meta.data else [])]
    if not files:
        raise PerfexError("the baselines need training clips: pass --train-data with the data the model was trained on")
    train_all = _load(files, data, meta)
    manifest = covering_manifest(train_all, chain)
    return train_all.subset(split_indices(train_all, manifest)["train"]) if manifest else train_all


def lineage_chain(meta: CheckpointMeta, depth: int = 20) -> list[CheckpointMeta]:
    """These weights' metadata, then their parent's, grandparent's... as far as the parent files are at hand."""
    chain = [meta]
    while chain[-1].lineage.parent and len(chain) < depth:
        parent_file = locate(chain[-1].lineage.parent["file"])
        if not parent_file.exists() or parent_file.suffix != ".safetensors":
            break
        chain.append(read_config(parent_file))
    return chain


def covering_manifest(clips: ClipSet, chain: list[CheckpointMeta]) -> dict | None:
    """The first split manifest along the lineage that knows every source video of ``clips``."""
    keys = set(group_keys(clips))
    for meta in chain:
        if meta.split and keys <= {k for name in ("train", "val", "test") for k in meta.split[name]}:
            return meta.split
    return None


def forgetting_check(config: TestConfig, chain: list[CheckpointMeta], model: torch.nn.Module, device: torch.device,
                     bf16: bool) -> dict:
    """The retrained model beside its parent on the parent's own test split: what retraining gained and what it lost."""
    parent_file = locate(chain[0].lineage.parent["file"])
    if len(chain) < 2 or chain[1].split is None:
        return {"skipped": f"the parent checkpoint {parent_file} (or its split manifest) is not at hand"}
    parent_meta = chain[1]
    as_parent = replace(config, data=replace(config.data, data=[], labels=None, label_binning=None))
    data = data_as_trained(as_parent, parent_meta)
    clips = _load(data.data, data, parent_meta)
    parts, _ = originals_only_in_evaluation(clips, split_indices(clips, parent_meta.split))
    test_clips = clips.subset(parts["test"])
    if len(test_clips) == 0:
        return {"skipped": "the parent's test split holds no clip"}
    parent_model, _ = load_checkpoint(parent_file, map_location=str(device))
    scores = {}
    for name, net in (("parent", parent_model), ("retrained", model)):
        probs, _ = predict_probs(net, test_clips, batch_size=config.run.batch_size, device=device, bf16=bf16)
        scores[name] = trait_metrics(test_clips.levels, probs, test_clips.scores, targets=parent_meta.target_set)["mean"]
    return {"evaluated_on": f"the parent's test split ({len(test_clips)} clips) of {', '.join(map(str, data.data))}",
            "parent_file": str(parent_file), "n_clips": len(test_clips), **scores}


def forgetting_markdown(check: dict) -> str:
    """A table: each metric for the parent and the retrained model on the parent's test split, and the change."""
    if "skipped" in check:
        return f"Did retraining forget? Not checked: {check['skipped']}.\n"
    rows = [f"| {label} | {check['parent'][key]:.3f} | {check['retrained'][key]:.3f} | {check['retrained'][key] - check['parent'][key]:+.3f} |"
            for label, key in FORGETTING_METRICS.items() if key in check["parent"]]
    return "\n".join([f"Did retraining forget? On {check['evaluated_on']}:", "", "| metric | parent | retrained | change |",
                      "|---|---:|---:|---:|", *rows]) + "\n"


FORGETTING_METRICS = {"mean accuracy": "accuracy", "macro-F1": "f1_macro", "1-MAE": "one_minus_mae", "Pearson r": "pearson_r"}


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


def evaluate_checkpoint(config: TestConfig) -> dict:
    """Evaluate ``config.test.weights`` and write results.json, results.md, predictions.csv and confusion matrices."""
    test, run = config.test, config.run
    device = pick_device(run.device)
    use_threads(run.threads)
    bf16 = resolve_precision(run.precision, device) == "bf16"
    model, meta = load_checkpoint(test.weights, family=config.family, map_location=str(device))
    evaluated, train, source = evaluation_sets(config, meta)
    check_features(meta, evaluated.feature_names, test.weights)
    logits, positions = window_logits(model, evaluated, batch_size=run.batch_size, device=device, bf16=bf16,
                                      progress=show_progress(run.progress))
    probs, _ = clip_probabilities(model, logits, positions, len(evaluated))
    targets = meta.target_set
    results = evaluate_with_baselines(
        evaluated.levels, probs, evaluated.scores, train.levels, train.scores,
        clip_summary_features(train), clip_summary_features(evaluated),
        groups=group_keys(evaluated), n_boot=test.n_boot, seed=run.seed, targets=targets,
    )
    results.update(evaluated_on=source, weights=str(test.weights), model_name=meta.model, n_baseline_train_clips=len(train),
                   label_binning={"weights": meta.label_binning, "data": evaluated.label_binning},
                   targets=targets.as_list())
    results["markdown"] = results_markdown(results, meta.model, targets)
    if meta.temperatures is not None and not all(t.continuous for t in targets):
        results["calibration"] = calibration_check(model, evaluated, logits, positions, probs, Path(test.out), targets)
        results["markdown"] += "\n" + calibration_markdown(results["calibration"], meta.temperatures)
    if meta.lineage.parent and not config.data.data and not test.split:
        results["forgetting"] = forgetting_check(config, lineage_chain(meta), model, device, bf16)
        results["markdown"] += "\n" + forgetting_markdown(results["forgetting"])
    if test.importance:
        results["markdown"] += "\n" + importance_section(model, evaluated, config, device, Path(test.out))
    write_test_outputs(Path(test.out), results, evaluated, probs, f"{meta.model}: {test.subset} split", targets)
    return results


def importance_section(model: torch.nn.Module, evaluated: ClipSet, config: TestConfig, device: torch.device, out: Path) -> str:
    """Rank AUs per target by mean |attribution| and by permutation importance; write the table and chart into ``out``
    (the evaluated clips carry the checkpoint's targets, continuous ones with their training center and scale)."""
    from .importance import model_importance, write_importance

    attribution, permutation = model_importance(model, evaluated, device=device, batch_size=config.run.batch_size,
                                                n_boot=config.test.n_boot, seed=config.run.seed,
                                                progress=show_progress(config.run.progress), targets=evaluated.targets)
    out.mkdir(parents=True, exist_ok=True)
    return write_importance(out, attribution, permutation)


def calibration_check(model: torch.nn.Module, evaluated: ClipSet, logits: np.ndarray, positions: np.ndarray,
                      probs: np.ndarray, out: Path, targets: Targets = BIG_FIVE) -> dict:
    """ECE, Brier, RPS and NLL of the evaluated clips' level targets without and with the stored temperatures (the
    same window logits decoded both ways); a reliability diagram."""
    from ..train.calibration import calibration_report, reliability_diagram

    temperatures = model.temperature.clone()
    model.set_temperatures(torch.ones_like(temperatures))
    raw, _ = clip_probabilities(model, logits, positions, len(evaluated))
    model.set_temperatures(temperatures)
    out.mkdir(parents=True, exist_ok=True)
    levelled = [t for t, target in enumerate(targets) if not target.continuous]  # continuous targets have no temperature
    reliability_diagram({"uncalibrated": raw[:, levelled], "calibrated": probs[:, levelled]}, evaluated.levels[:, levelled],
                        out / "reliability.png")
    if not targets.is_big_five:  # each level target on its own levels
        return _target_calibration(raw, probs, evaluated.levels, targets)
    return {"before": calibration_report(raw, evaluated.levels), "after": calibration_report(probs, evaluated.levels)}


def _target_calibration(raw: np.ndarray, probs: np.ndarray, levels: np.ndarray, targets: Targets) -> dict:
    """``calibration_report`` before and after, averaged over the level targets (each on its own K levels)."""
    from ..train.calibration import calibration_report

    levelled = [(t, target.levels) for t, target in enumerate(targets) if not target.continuous]
    check = {}
    for when, values in (("before", raw), ("after", probs)):
        reports = [calibration_report(values[:, t : t + 1, :k], levels[:, t : t + 1]) for t, k in levelled]
        check[when] = {key: float(np.mean([r[key] for r in reports])) for key in reports[0]}
    return check


def calibration_markdown(check: dict, temperatures: list[float]) -> str:
    """Before/after table of the calibration metrics (lower is better)."""
    rows = [f"| {name} | {check['before'][key]:.3f} | {check['after'][key]:.3f} |"
            for name, key in (("expected calibration error", "ece"), ("Brier score", "brier"),
                              ("ranked probability score", "rps"), ("negative log-likelihood", "nll"))]
    return "\n".join([f"Calibration (temperatures {', '.join(f'{t:.2f}' for t in temperatures)}, fitted on the validation "
                      "split; lower is better; reliability.png):", "", "| metric | uncalibrated | calibrated |",
                      "|---|---:|---:|", *rows]) + "\n"


def write_test_outputs(out: Path, results: dict, evaluated: ClipSet, probs: np.ndarray, title: str,
                       targets: Targets = BIG_FIVE) -> None:
    """results.json, results.md, predictions.csv (true and predicted level values, or continuous values, per clip)
    and the confusion-matrix PNGs of the level targets."""
    from ..core.plots import plot_confusion_matrices, plot_confusion_matrix_per_trait

    out.mkdir(parents=True, exist_ok=True)
    stored = {k: v for k, v in results.items() if k != "markdown"}
    (out / "results.json").write_text(json.dumps(strict_json(stored), indent=1, allow_nan=False) + "\n")
    (out / "results.md").write_text(f"Evaluated on {results['evaluated_on']}.\n\n{results['markdown']}\n")
    predicted = targets.predicted_levels(probs)
    values = targets.scores(probs)
    table = pd.DataFrame({"ID": evaluated.ids, "File": evaluated.files})
    for t, target in enumerate(targets):
        continuous = target.continuous
        table[f"{target.name}_true"] = evaluated.scores[:, t] if continuous else evaluated.levels[:, t] / (target.levels - 1)
        table[f"{target.name}_pred"] = values[:, t] if continuous else predicted[:, t] / (target.levels - 1)
    table.to_csv(out / "predictions.csv", index=False)
    plot_confusion_matrices(evaluated.levels, predicted, out / "confusion_matrices.png", title=title, targets=targets)
    plot_confusion_matrix_per_trait(evaluated.levels, predicted, out, targets=targets)
