"""Markdown report of a test run: the model beside its baselines, per trait, with the bootstrap interval."""

from __future__ import annotations

import math

from ..core.metrics import BASELINE_DESCRIPTIONS
from ..core.schema import TRAITS


def fmt(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def results_markdown(results: dict, model_name: str) -> str:
    """Markdown summary: model vs baselines on mean metrics, per-trait accuracy and 1-MAE, and the model's 95% CI."""
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
