"""PNG figures of explanations: one clip over time, and whole-model AU importance bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..core.plots import new_figure, save_figure
from ..core.schema import BIG_FIVE, Targets
from .importance import ranked_by

PERMUTATION_LABELS = {"qwk_drop": "QWK drop", "pearson_r_drop": "Pearson r drop"}


def _overlay_alpha(values: np.ndarray) -> np.ndarray:
    """Opacity proportional to |attribution| (the strongest cell fully opaque)."""
    peak = np.abs(values).max()
    return np.clip(np.abs(values) / peak, 0, 1) if peak > 0 else np.zeros_like(values)


def plot_clip_explanation(features: np.ndarray, times: np.ndarray, attributions: np.ndarray, attention: np.ndarray | None,
                          levels: np.ndarray, feature_names: list[str], out_path: Path, clip_id: str = "",
                          targets: Targets = BIG_FIVE) -> Path:
    """Attention over time on top; per target, AU intensities (grey heatmap) with the attribution overlaid (red +, blue -)."""
    names = [name.removesuffix("_r") for name in feature_names]
    extent = (float(times[0]), float(times[-1]) if len(times) > 1 else 1.0, len(names) - 0.5, -0.5)
    rows = len(targets) + (attention is not None)
    figure = new_figure(10, 1.0 + 1.9 * rows)
    axes = figure.subplots(rows, 1, sharex=True, height_ratios=([0.6] if attention is not None else []) + [1] * len(targets))
    if attention is not None:
        axes[0].plot(times, attention, color="black", lw=1)
        axes[0].set_ylabel("attention", fontsize=8)
    if targets.is_big_five:
        title = "predicted levels " + ", ".join(f"{trait[:3]} {level}" for trait, level in zip(targets.names, levels))
    else:
        title = "explained: " + ", ".join(f"{t.name} {'value' if t.continuous else f'level {level}'}"
                                          for t, level in zip(targets, levels))
    figure.suptitle(f"clip {clip_id}: {title}", fontsize=10)
    for t, ax in enumerate(axes[-len(targets):]):
        values = attributions[:, t, :].T
        scale = float(np.abs(values).max()) or 1.0
        ax.imshow(features.T, cmap="Greys", aspect="auto", extent=extent, vmin=0, vmax=max(float(features.max()), 1.0))
        image = ax.imshow(values, cmap="RdBu_r", vmin=-scale, vmax=scale, aspect="auto", extent=extent,
                          alpha=_overlay_alpha(values), interpolation="nearest")
        ax.set_yticks(range(len(names)), names, fontsize=5)
        ax.set_ylabel(f"{targets[t].name}\n({'value' if targets[t].continuous else f'level {levels[t]}'})", fontsize=8)
        figure.colorbar(image, ax=ax, pad=0.01, fraction=0.02).ax.tick_params(labelsize=6)
    axes[-1].set_xlabel("time (s)")
    return save_figure(figure, out_path)


def plot_importance(attribution: pd.DataFrame, permutation: pd.DataFrame, out_path: Path, top: int = 8) -> Path:
    """Per target (columns), the ``top`` AUs by mean |attribution| (upper row) and by permutation importance (lower
    row: QWK drop, or Pearson r drop for a continuous target), 95% CIs."""
    column = attribution.columns[0]  # "trait" or "target", as the importance tables name it
    names = list(dict.fromkeys(attribution[column]))
    figure = new_figure(3.0 * len(names), 6.5)
    axes = figure.subplots(2, len(names), squeeze=False)
    for t, name in enumerate(names):
        score = ranked_by(permutation, name)
        panels = ((attribution, "mean_abs_attribution", "mean |attribution|"),
                  (permutation, score, f"{PERMUTATION_LABELS[score]} when shuffled"))
        for row, (table, value, label) in enumerate(panels):
            part = table[table[column] == name].sort_values("rank").head(top).iloc[::-1]
            errors = np.abs(np.stack([part[value] - part[f"{value}_low"], part[f"{value}_high"] - part[value]]))
            axes[row, t].barh(part["feature"].str.removesuffix("_r"), part[value], xerr=errors, color="tab:blue", capsize=2)
            axes[row, t].tick_params(labelsize=7)
            axes[row, t].locator_params(axis="x", nbins=4)
            axes[row, t].set_title(name if row == 0 else "", fontsize=9)
            axes[row, t].set_xlabel(label, fontsize=8)
    return save_figure(figure, out_path)
