"""``collect``: validate the filled sheets, measure agreement, flag raters, aggregate, write the retrain CSV and report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import PerfexError
from ...data.labels import scores_to_levels
from ...core.schema import BIG_FIVE, ID_COLUMN, Targets
from ...core.tables import refuse_overwrite
from .agreement import leave_one_out_r, trait_agreement
from ...checkpoint.provenance import MANIFEST, read_manifest, sha256, sidecar_path, write_json
from .options import AGGREGATES, CollectConfig
from .report import write_report
from .retrain_data import check_inputs, write_retrain_csv
from .scale import scale_values, study_targets, to_unit
from .sheets import read_sheet

RETRAIN_NAME = "retrain.csv.gz"


def read_sheets(study_dir: Path, manifest: dict, sheets: list[str] | None) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """(raters, answers [clips, raters, targets] on the study scale, {rater: sheet SHA-256}) of every filled sheet."""
    paths = [Path(p) for p in sheets] if sheets else sorted(study_dir.glob("sheet_*.csv"))
    if not paths:
        raise PerfexError(f"{study_dir} holds no sheet_*.csv; put the raters' filled sheets there or pass --sheets")
    clip_ids, raters, answers, hashes = manifest["clip_ids"], [], [], {}
    for path in paths:
        rater, given = read_sheet(path, manifest["study_id"], clip_ids, manifest["scale"]["name"], study_targets(manifest))
        if rater in raters:
            raise PerfexError(f"{path.name}: rater {rater!r} already has a sheet; pass each rater's sheet once")
        raters.append(rater)
        answers.append([given[clip] for clip in clip_ids])
        hashes[rater] = sha256(path)
    if len(raters) < 2:
        raise PerfexError(f"only {len(raters)} filled sheet ({', '.join(raters)}); agreement needs at least two raters")
    return raters, np.array(answers, dtype=np.float64).transpose(1, 0, 2), hashes


def rater_checks(scores: np.ndarray, raters: list[str], min_r: float, targets: Targets = BIG_FIVE) -> dict[str, dict]:
    """Per rater: r with the leave-one-out mean of the others for each target, their mean, and whether it is flagged."""
    per_trait = np.stack([leave_one_out_r(scores[:, :, t]) for t in range(len(targets))], axis=1)
    checks = {}
    for k, rater in enumerate(raters):
        mean_r = float(np.nanmean(per_trait[k])) if np.isfinite(per_trait[k]).any() else float("nan")
        checks[rater] = {"loo_r": dict(zip(targets.names, map(float, per_trait[k]))), "mean_loo_r": mean_r,
                         "flagged": bool(not np.isfinite(mean_r) or mean_r < min_r)}
    return checks


def aggregate_levels(scores: np.ndarray, how: str, binning: str, clip_ids: list[str],
                     targets: Targets = BIG_FIVE) -> tuple[np.ndarray, np.ndarray, str]:
    """(raters' mean or median score [clips, targets], binned levels [clips, targets] in 0..K-1, binning as recorded)."""
    if how not in AGGREGATES:
        raise PerfexError(f"--aggregate {how!r}: use one of {', '.join(AGGREGATES)}")
    combined = scores.mean(axis=1) if how == "mean" else np.median(scores, axis=1)
    levels, recorded = scores_to_levels(combined, binning, np.asarray(clip_ids), targets)
    return combined, levels, recorded


def _outputs(out: Path) -> list[Path]:
    names = (RETRAIN_NAME, "aggregate.csv", "agreement.json", "report.md", "agreement.png", "ratings.png")
    return [out / name for name in names] + [sidecar_path(out / RETRAIN_NAME)]


def _sidecar(manifest: dict, study_dir: Path, hashes: dict[str, str], raters: list[str], used: list[str], aggregate: str,
             retrain: Path, rows: int) -> dict:
    """What the retrain CSV came from: the study, its inputs and sheets (hashes), raters and how they were combined."""
    return {"study_id": manifest["study_id"],
            "study_manifest": {"path": str((study_dir / MANIFEST).resolve()), "sha256": sha256(study_dir / MANIFEST)},
            "inputs": manifest["data"], "predictions": manifest["predictions"], "sheets": hashes, "raters": raters,
            "raters_used": used, "aggregate": aggregate, "label_binning": manifest["label_binning"],
            "retrain_data": {"path": str(retrain.resolve()), "sha256": sha256(retrain), "rows": rows}}


def collect(config: CollectConfig) -> dict:
    """Run the whole collect step; returns the summary also written to agreement.json."""
    study_dir, out = Path(config.study), Path(config.out)
    for path in _outputs(out):
        refuse_overwrite(path, config.force)
    manifest = read_manifest(study_dir)
    inputs = check_inputs(manifest)
    raters, answers, hashes = read_sheets(study_dir, manifest, config.sheets)
    scale, targets = manifest["scale"]["name"], study_targets(manifest)
    scores = to_unit(answers, scale)
    agreement = {t.name: trait_agreement(answers[:, :, k], scale_values(scale, None if targets.is_big_five else t),
                                         config.bootstrap, config.seed) for k, t in enumerate(targets)}
    checks = rater_checks(scores, raters, config.min_rater_r, targets)
    used = [r for r in raters if not (config.drop_flagged and checks[r]["flagged"])]
    if len(used) < 1:
        raise PerfexError("every rater is flagged; nothing is left to aggregate (leave out --drop-flagged to keep them)")
    keep = [raters.index(r) for r in used]
    combined, levels, binning = aggregate_levels(scores[:, keep], config.aggregate, manifest["label_binning"],
                                                 manifest["clip_ids"], targets)
    manifest = {**manifest, "label_binning": binning}
    steps = np.array([t.levels - 1 for t in targets], dtype=np.float64)
    labels = pd.DataFrame(levels / steps, index=pd.Index(manifest["clip_ids"], name=ID_COLUMN), columns=list(targets.names))
    retrain = out / RETRAIN_NAME
    rows = write_retrain_csv(inputs, labels, manifest["study_id"], retrain)
    summary = {"study_id": manifest["study_id"], "raters": raters, "raters_used": used, "aggregate": config.aggregate,
               "label_binning": manifest["label_binning"], "scale": manifest["scale"], "n_clips": len(manifest["clip_ids"]),
               "inputs": manifest["data"],
               "agreement": agreement, "rater_checks": checks, "min_rater_r": config.min_rater_r, "bootstrap": config.bootstrap}
    write_json(_sidecar(manifest, study_dir, hashes, raters, used, config.aggregate, retrain, rows), sidecar_path(retrain))
    write_report(out, summary, manifest, study_dir, scores, combined, levels)
    write_json(summary, out / "agreement.json")
    return summary
