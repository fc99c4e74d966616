"""The cross-validation report: every system's metrics per fold, over folds and pooled out of fold, as JSON and
Markdown; and the test scripts' view of one or more CV run directories as one report."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import PerfexError
from .evaluation import strict_json
from ..core.metrics import (BASELINE_DESCRIPTIONS, BASELINE_NAMES, HEADLINE_METRICS, METRICS_BY_KIND, metric_names,
                            trait_metrics)
from .report import METRIC_TITLES, fmt, markdown_table
from ..core.tables import read_json
from ..core.schema import BIG_FIVE, Target, Targets

REPORT_FORMAT = "perfex-cv-report"
HEADLINE = {"mean accuracy": "accuracy", "macro-F1": "f1_macro", "QWK": "qwk", "MAE (score)": "mae", "Pearson r": "pearson_r"}
# the columns of a target's tables in the report of targets other than the Big Five, by the target's kind
TARGET_COLUMNS = {"ordinal": ("accuracy", "f1_macro", "qwk", "mae", "pearson_r"),
                  "binary": ("accuracy", "roc_auc", "f1_macro", "brier", "pearson_r"),
                  "continuous": ("mae", "pearson_r", "ccc", "r2", "rmse")}


@dataclass
class FoldResult:
    """One fold's held-out clips (clip numbers), each system's predictions for them as (outputs [N, targets, L],
    scores [N, targets]), each system's metrics, the fold's sizes and its network's best epoch."""

    fold: int
    index: np.ndarray
    predictions: dict[str, tuple[np.ndarray, np.ndarray]]
    metrics: dict[str, dict]
    info: dict
    best_epoch: int


def score_fold(fold: int, index: np.ndarray, predictions: dict[str, tuple[np.ndarray, np.ndarray]], levels: np.ndarray,
               scores: np.ndarray, info: dict, best_epoch: int, targets: Targets = BIG_FIVE) -> FoldResult:
    """A fold's result with every system's metrics on its held-out clips (``levels``/``scores`` cover all clips)."""
    metrics = {name: trait_metrics(levels[index], probs, scores[index], predicted, targets=targets)
               for name, (probs, predicted) in predictions.items()}
    return FoldResult(fold, index, predictions, metrics, info, best_epoch)


def pooled(results: list[FoldResult], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One system's out-of-fold predictions of every fold together: clip numbers, level probabilities, scores."""
    parts = [(r.index, *r.predictions[name]) for r in results]
    return tuple(np.concatenate(column) for column in zip(*parts))


def spread(values: list[float | None]) -> dict:
    """Mean, sample standard deviation (n - 1) and number of the folds whose value is finite (NaN where none is)."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    return {"mean": float(finite.mean()) if len(finite) else math.nan,
            "std": float(finite.std(ddof=1)) if len(finite) > 1 else math.nan, "n_folds": len(finite)}


def over_folds(per_fold: list[dict], targets: Targets = BIG_FIVE) -> dict:
    """``spread`` of every metric over the folds, of the target mean and of each target (its kind's metrics)."""
    return {"mean": {m: spread([f["mean"][m] for f in per_fold]) for m in metric_names(targets)},
            "per_trait": {t.name: {m: spread([f["per_trait"][t.name][m] for f in per_fold]) for m in METRICS_BY_KIND[t.kind]}
                          for t in targets}}


def system_entry(name: str, results: list[FoldResult], levels: np.ndarray, scores: np.ndarray,
                 targets: Targets = BIG_FIVE) -> dict:
    """One system's metrics on every fold, their spread over the folds, and the pooled out-of-fold metrics."""
    per_fold = [{"fold": r.fold, **r.metrics[name]} for r in results]
    index, probs, predicted = pooled(results, name)
    return {"folds": per_fold, "over_folds": over_folds(per_fold, targets),
            "pooled": trait_metrics(levels[index], probs, scores[index], predicted, targets=targets)}


def targets_record(targets: Targets) -> list[dict]:
    """The report's ``targets``: each target's name, level count (0: continuous) and kind."""
    return [{"name": t.name, "levels": t.levels, "kind": t.kind} for t in targets]


def report_targets(report: dict) -> Targets:
    """The targets a CV report scores (a report without ``targets``: the Big Five)."""
    return Targets.from_list(report.get("targets"))


def cv_report(network: str, results: list[FoldResult], levels: np.ndarray, scores: np.ndarray, settings: dict,
              assignment: dict, targets: Targets = BIG_FIVE) -> dict:
    """The report of one CV run: settings, fold sizes and assignment, the targets (unless the Big Five), and the
    network beside every baseline."""
    systems = {network: {"kind": "network", "best_epochs": [r.best_epoch for r in results],
                         **system_entry(network, results, levels, scores, targets)}}
    systems.update({name: {"kind": "baseline", "description": BASELINE_DESCRIPTIONS[name],
                           **system_entry(name, results, levels, scores, targets)} for name in BASELINE_NAMES})
    record = {} if targets.is_big_five else {"targets": targets_record(targets)}
    return {"format": REPORT_FORMAT, "version": 1, "networks": [network], "settings": settings, **record,
            "folds": [r.info for r in results], "systems": systems, "assignment": assignment}


def system_label(name: str, system: dict) -> str:
    return f"**{name}**" if system["kind"] == "network" else f"{name} ({system['description']})"


def plus_minus(value: dict) -> str:
    return f"{fmt(value['mean'])} ± {fmt(value['std'])}"


def applies(system: dict, target: str) -> bool:
    """Whether a system predicted ``target`` (a baseline that does not apply to its kind has no finite pooled metric)."""
    return any(value is not None and math.isfinite(value) for value in system["pooled"]["per_trait"][target].values())


def target_markdown(report: dict, target: Target) -> list[str]:
    """One target's section: the systems that predict it over folds and pooled on its kind's metrics, then its
    headline metrics per fold."""
    systems, folds = report["systems"], report["folds"]
    shown = {name: s for name, s in systems.items() if applies(s, target.name)}
    columns = TARGET_COLUMNS[target.kind]
    kind = f"{target.levels} ordered levels" if target.kind == "ordinal" else target.kind
    lines = ["", f"### {target.name} ({kind})", "", "Over folds (mean ± sample standard deviation):", ""]
    lines += markdown_table(["system", *(METRIC_TITLES[m] for m in columns)],
                            [[system_label(name, s), *(plus_minus(s["over_folds"]["per_trait"][target.name][m])
                                                       for m in columns)] for name, s in shown.items()])
    lines += ["", "Pooled out of fold:", ""]
    lines += markdown_table(["system", *(METRIC_TITLES[m] for m in columns)],
                            [[system_label(name, s), *(fmt(s["pooled"]["per_trait"][target.name][m]) for m in columns)]
                             for name, s in shown.items()])
    for metric in HEADLINE_METRICS[target.kind]:
        lines += ["", f"Per fold, {target.name} {METRIC_TITLES[metric]}:", ""]
        lines += markdown_table(["fold", "clips", *shown], [[str(f["fold"]), str(f["n_test_clips"]),
                                *(fmt(s["folds"][i]["per_trait"][target.name][metric]) for s in shown.values())]
                                for i, f in enumerate(folds)])
    return lines


def cv_markdown(report: dict) -> str:
    """The report as Markdown: each system over folds (mean ± sd), pooled out of fold, then each headline metric per
    fold; for targets other than the Big Five, these per target on its kind's metrics."""
    settings, systems, folds = report["settings"], report["systems"], report["folds"]
    targets = report_targets(report)
    lines = [f"Cross-validation of {', '.join(report['networks'])}: {settings['folds']} folds of whole source videos "
             f"({settings['n_videos']} videos, {settings['n_clips']} clips; stratified by {settings['stratified_by']}), "
             f"seed {settings['seed']}. In each fold the network trained on the other folds ({settings['val_fraction']:.0%} of "
             "their videos held back for validation), the baselines were fitted on all clips of the other folds, and all "
             "were scored on the held-out fold's original clips."]
    if "runs" in report:
        lines.append(f"Runs: {'; '.join(report['runs'])}.")
    if not targets.is_big_five:
        lines += ["", f"Targets: {targets.spec()}. Pooled out of fold: all {sum(f['n_test_clips'] for f in folds)} held-out "
                  "clips scored together. Baselines that do not apply to a target's kind are left out of its tables."]
        lines += [line for target in targets for line in target_markdown(report, target)]
        return "\n".join(lines) + "\n"
    lines += ["", "Over folds (mean ± sample standard deviation of the per-fold values):", ""]
    lines += markdown_table(["system", *HEADLINE], [[system_label(name, s), *(plus_minus(s["over_folds"]["mean"][key])
                                                     for key in HEADLINE.values())] for name, s in systems.items()])
    lines += ["", f"Pooled out of fold (all {sum(f['n_test_clips'] for f in folds)} held-out clips scored together):", ""]
    lines += markdown_table(["system", *HEADLINE], [[system_label(name, s), *(fmt(s["pooled"]["mean"][key])
                                                     for key in HEADLINE.values())] for name, s in systems.items()])
    for title, key in HEADLINE.items():
        lines += ["", f"Per fold, {title}:", ""]
        lines += markdown_table(["fold", "clips", *systems], [[str(f["fold"]), str(f["n_test_clips"]),
                                *(fmt(s["folds"][i]["mean"][key]) for s in systems.values())] for i, f in enumerate(folds)])
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict) -> str:
    """Write ``cv_report.json`` and ``cv_report.md`` into ``out``; returns the Markdown."""
    markdown = cv_markdown(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cv_report.json").write_text(json.dumps(strict_json(report), indent=1, allow_nan=False) + "\n")
    (out / "cv_report.md").write_text(markdown)
    return markdown


def is_cv_run(path: str | Path) -> bool:
    """True for the run directory of ``train --folds``."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in ("folds.json", "cv_report.json"))


def read_cv_run(path: str | Path) -> dict:
    """The ``cv_report.json`` of a CV run directory, or a one-line error saying why there is none."""
    if not is_cv_run(path):
        raise PerfexError(f"{path} is not a cross-validation run directory; pass either one checkpoint or only "
                          "directories written by train --folds")
    report = read_json(Path(path) / "cv_report.json", "its cross-validation did not finish; run train --folds again with "
                       "a new --out", "cross-validation report")
    if not isinstance(report, dict) or report.get("format") != REPORT_FORMAT:
        raise PerfexError(f"{path}/cv_report.json is not a PerFeX cross-validation report; pass a directory written by "
                          "train --folds")
    return report


def merge_cv_runs(paths: list[str]) -> dict:
    """One report of CV runs made on the same folds: every network and baseline per fold. A system found in more
    than one run with other results is labelled with its run directory."""
    reports = [read_cv_run(p) for p in paths]
    for path, report in zip(paths[1:], reports[1:]):
        theirs, first = report_targets(report).spec(), report_targets(reports[0]).spec()
        if theirs != first:
            raise PerfexError(f"{path} predicts other targets ({theirs}) than {paths[0]} ({first}); compare runs trained "
                              "with the same --targets")
        if report["assignment"]["folds"] != reports[0]["assignment"]["folds"]:
            raise PerfexError(f"{path} was cross-validated on other folds than {paths[0]} (different --folds, --seed or data); "
                              "compare runs made with the same --folds and --seed on the same data")
    systems: dict[str, dict] = {}
    for path, report in zip(paths, reports):
        for name, system in report["systems"].items():
            systems[name if systems.get(name, system) == system else f"{name} ({Path(path).name})"] = system
    ordered = dict(sorted(systems.items(), key=lambda item: item[1]["kind"] != "network"))
    runs = [f"{', '.join(r['networks'])} in {p}" for p, r in zip(paths, reports)]
    return {**reports[0], "networks": [n for n, s in ordered.items() if s["kind"] == "network"], "runs": runs, "systems": ordered}
