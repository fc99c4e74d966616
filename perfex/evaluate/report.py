"""Markdown report of a test run: the model beside its baselines, per trait, with the bootstrap interval."""

from __future__ import annotations

import math

from ..core.metrics import BASELINE_DESCRIPTIONS, BASELINES_BY_KIND, METRICS_BY_KIND
from ..core.schema import BIG_FIVE, TRAITS, Targets

METRIC_TITLES = {"accuracy": "accuracy", "roc_auc": "ROC AUC", "f1_macro": "macro-F1", "brier": "Brier",
                 "precision_macro": "precision", "recall_macro": "recall", "pearson_r": "Pearson r", "mae": "MAE",
                 "ccc": "CCC", "r2": "R²", "rmse": "RMSE", "qwk": "QWK", "roc_auc_ovr_macro": "ROC AUC (OvR macro)",
                 "off_by_one_accuracy": "off-by-one acc.", "mae_levels": "MAE (levels)", "one_minus_mae": "1-MAE"}
ORDINAL_REPORT = ("accuracy", "f1_macro", "qwk", "off_by_one_accuracy", "mae", "pearson_r", "ccc")


def fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def targets_markdown(results: dict, model_name: str, targets: Targets) -> str:
    """Markdown summary for targets other than the Big Five: per target, the model beside the baselines that apply
    to its kind, on that kind's metrics; the model's 95% CI of mean accuracy over level targets."""
    lines = [f"Test set: {results['n_test_clips']} clips. Baselines are fitted on the training clips only.", ""]
    for target in targets:
        kind = target.kind
        header = {"binary": "binary", "ordinal": f"{target.levels} ordered levels", "continuous": "continuous"}[kind]
        systems = {f"**{model_name}**": results["model"]}
        systems.update({f"{name} ({BASELINE_DESCRIPTIONS[name]})": results["baselines"][name]
                        for name in BASELINES_BY_KIND[kind] if name in results["baselines"]})
        names = ORDINAL_REPORT if kind == "ordinal" else METRICS_BY_KIND[kind]
        lines += [f"**{target.name}** ({header}):", ""]
        lines += markdown_table(["system", *(METRIC_TITLES[n] for n in names)],
                                [[system, *(fmt(m["per_trait"][target.name][n]) for n in names)]
                                 for system, m in systems.items()])
        lines.append("")
    low, high = results["model"]["accuracy_ci95"]
    if not math.isnan(low):
        bootstrap = results.get("bootstrap", {})
        resampling = f" ({bootstrap['n_boot']} bootstrap resamples of {bootstrap['n_units']} {bootstrap['unit']}s)" if bootstrap else ""
        lines.append(f"{model_name} mean accuracy over level targets {fmt(results['model']['mean']['accuracy'])}, "
                     f"95% CI [{fmt(low)}, {fmt(high)}]{resampling}.")
    return "\n".join(lines) + "\n"


def results_markdown(results: dict, model_name: str, targets: Targets = BIG_FIVE) -> str:
    """Markdown summary: model vs baselines on mean metrics, per-trait accuracy and 1-MAE, and the model's 95% CI."""
    if not targets.is_big_five:
        return targets_markdown(results, model_name, targets)
    summary_columns = {
        "mean accuracy": "accuracy",
        "macro-F1": "f1_macro",
        "ROC AUC (OvR macro)": "roc_auc_ovr_macro",
        "QWK": "qwk",
        "off-by-one acc.": "off_by_one_accuracy",
        "MAE (levels)": "mae_levels",
        "1-MAE": "one_minus_mae",
        "RMSE": "rmse",
        "Pearson r": "pearson_r",
        "CCC": "ccc",
    }
    systems = {f"**{model_name}**": results["model"]}
    systems.update({f"{name} ({BASELINE_DESCRIPTIONS.get(name, 'baseline')})": m for name, m in results["baselines"].items()})
    lines = [f"Test set: {results['n_test_clips']} clips. Baselines are fitted on the training clips only.", ""]
    lines += markdown_table(
        ["system", *summary_columns],
        [[name, *(fmt(m["mean"][key]) for key in summary_columns.values())] for name, m in systems.items()],
    )
    short_names = [model_name, *results["baselines"]]
    for title, key in (("Accuracy per trait", "accuracy"), ("1-MAE per trait", "one_minus_mae")):
        lines += ["", f"{title}:", ""]
        lines += markdown_table(
            ["trait", *short_names],
            [[trait, *(fmt(m["per_trait"][trait][key]) for m in systems.values())] for trait in TRAITS],
        )
    low, high = results["model"]["accuracy_ci95"]
    bootstrap = results.get("bootstrap", {})
    resampling = (
        f" ({bootstrap['n_boot']} bootstrap resamples of {bootstrap['n_units']} {bootstrap['unit']}s)" if bootstrap else ""
    )
    lines += ["", f"{model_name} mean accuracy {fmt(results['model']['mean']['accuracy'])}, "
              f"95% CI [{fmt(low)}, {fmt(high)}]{resampling}."]
    return "\n".join(lines) + "\n"
