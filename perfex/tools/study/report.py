"""The collect report: aggregate.csv, report.md and two figures (agreement per trait; ratings and model vs raters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ...core.schema import FILE_COLUMN, ID_COLUMN
from ...core.tables import atomic_output
from .scale import study_targets


def _aggregate_table(clips: pd.DataFrame, study_id: str, combined: np.ndarray, levels: np.ndarray, how: str,
                     manifest: dict) -> pd.DataFrame:
    table = pd.DataFrame({"study_id": study_id, ID_COLUMN: clips[ID_COLUMN], FILE_COLUMN: clips[FILE_COLUMN]})
    for k, target in enumerate(study_targets(manifest)):
        trait = target.name
        table[f"{trait}_{how}"] = combined[:, k]
        table[trait] = levels[:, k] / (target.levels - 1)
        table[f"predicted_{trait}_score"] = clips[f"predicted_{trait}_score"].to_numpy()
    return table


def _agreement_figure(summary: dict, path: Path) -> None:
    fig = _figure((8, 3.6))
    ax = fig.subplots()
    traits = list(summary["agreement"])
    x = np.arange(len(traits))
    for offset, key, label in ((-0.18, "icc2k", "ICC(2,k)"), (0.18, "alpha_ordinal", "Krippendorff's alpha (ordinal)")):
        values = np.array([summary["agreement"][t][key] for t in traits])
        ci = np.array([summary["agreement"][t][f"{key}_ci95"] for t in traits])
        ax.bar(x + offset, values, 0.36, label=label, yerr=np.abs(ci.T - values), capsize=3)
    ax.set_xticks(x, traits, rotation=15)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("agreement (95% bootstrap CI)")
    ax.set_title(f"{summary['study_id']}: inter-rater agreement")
    ax.legend(fontsize=8)
    _save(fig, path, summary)


def _ratings_figure(summary: dict, scores: np.ndarray, combined: np.ndarray, predicted: np.ndarray, path: Path) -> None:
    traits = list(summary["agreement"])
    fig = _figure((3 * max(len(traits), 2), 6))
    axes = fig.subplots(2, len(traits), squeeze=False)
    for k, trait in enumerate(traits):
        for r, rater in enumerate(summary["raters"]):
            axes[0, k].hist(scores[:, r, k], bins=np.linspace(-0.125, 1.125, 6), histtype="step", label=rater)
        axes[0, k].set_title(trait)
        axes[1, k].scatter(predicted[:, k], combined[:, k], s=12)
        axes[1, k].plot([0, 1], [0, 1], color="grey", linewidth=0.6)
        axes[1, k].set_xlabel("model expected score")
    axes[0, 0].set_ylabel("answers (scaled to 0-1)")
    axes[1, 0].set_ylabel(f"raters' {summary['aggregate']}")
    axes[0, -1].legend(fontsize=7)
    fig.suptitle(f"{summary['study_id']}: rating distributions (top), model vs raters (bottom)")
    _save(fig, path, summary)


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path, summary: dict) -> None:
    """PNG with the study ID and input hashes in its metadata."""
    fig.tight_layout()
    inputs = "; ".join(f"{Path(d['path']).name} sha256 {d['sha256']}" for d in summary["inputs"])
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, metadata={"Title": summary["study_id"], "Description": f"inputs: {inputs}"})


def _markdown(summary: dict, manifest: dict, correlation: list[float]) -> str:
    lines = [f"# User study {summary['study_id']}", "",
             (f"{summary['n_clips']} clips, raters {', '.join(summary['raters'])}; scale {summary['scale']['name']}; "
              f"aggregate {summary['aggregate']} of {', '.join(summary['raters_used'])}, binned '{summary['label_binning']}'."),
             "", "Inputs: " + ", ".join(f"`{Path(d['path']).name}` (sha256 {d['sha256'][:12]})" for d in manifest["data"]), "",
             "| trait | ICC(2,k) [95% CI] | ordinal alpha [95% CI] | r(model, raters) |", "|---|---|---|---|"]
    for trait, r in zip(summary["agreement"], correlation):
        a = summary["agreement"][trait]
        lines.append(f"| {trait} | {a['icc2k']:.3f} [{a['icc2k_ci95'][0]:.3f}, {a['icc2k_ci95'][1]:.3f}] | "
                     f"{a['alpha_ordinal']:.3f} [{a['alpha_ordinal_ci95'][0]:.3f}, {a['alpha_ordinal_ci95'][1]:.3f}] | {r:.3f} |")
    lines += ["", f"Raters (r with the mean of the others; flagged below {summary['min_rater_r']}):", "",
              "| rater | mean r | flagged |", "|---|---|---|"]
    lines += [f"| {rater} | {c['mean_loo_r']:.3f} | {'yes' if c['flagged'] else 'no'} |" for rater, c in summary["rater_checks"].items()]
    return "\n".join(lines + ["", "![agreement](agreement.png)", "", "![ratings](ratings.png)", ""])


def write_report(out: Path, summary: dict, manifest: dict, study_dir: Path, scores: np.ndarray, combined: np.ndarray,
                 levels: np.ndarray) -> None:
    """aggregate.csv, report.md, agreement.png and ratings.png in ``out``."""
    clips = pd.read_csv(study_dir / "clips.csv", dtype={ID_COLUMN: str, FILE_COLUMN: str}).set_index(ID_COLUMN)
    clips = clips.reindex(manifest["clip_ids"]).reset_index()
    traits = list(summary["agreement"])
    predicted = clips[[f"predicted_{t}_score" for t in traits]].to_numpy(dtype=np.float64)
    with atomic_output(out / "aggregate.csv") as tmp:
        _aggregate_table(clips, summary["study_id"], combined, levels, summary["aggregate"], manifest).to_csv(
            tmp, index=False, float_format="%.6g")
    correlation = [float(np.corrcoef(predicted[:, k], combined[:, k])[0, 1]) if combined[:, k].std() > 0 and predicted[:, k].std() > 0
                   else float("nan") for k in range(len(traits))]
    summary["model_vs_raters_r"] = dict(zip(traits, correlation))
    _agreement_figure(summary, out / "agreement.png")
    _ratings_figure(summary, scores, combined, predicted, out / "ratings.png")
    with atomic_output(out / "report.md") as tmp:
        tmp.write_text(_markdown(summary, manifest, correlation))
