"""PNG figures (confusion matrices, training curves), drawn headless with matplotlib's Agg canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import PerfexError
from .metrics import level_confusion
from .schema import BIG_FIVE, LEVEL_GRID, TRAITS, Targets

LEVEL_TICK_LABELS = [f"{level}\n({score:g})".replace("0.", ".") for level, score in enumerate(LEVEL_GRID)]


def _tick_labels(n_levels: int) -> list[str]:
    """Level k with its grid value k / (K - 1), as the axes of a confusion matrix show them."""
    if n_levels == len(LEVEL_GRID):
        return LEVEL_TICK_LABELS
    return [f"{level}\n({level / (n_levels - 1):.3g})".replace("0.", ".") for level in range(n_levels)]


def new_figure(width: float, height: float):
    """A matplotlib Figure on an Agg canvas: no pyplot, no global backend, works without a display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, out_path: Path) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=120)
    return out_path


def _draw_confusion(ax, counts: np.ndarray, trait: str):
    """One trait's confusion matrix: colour = share of the true level's clips, text = count."""
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for true_level, predicted_level in np.ndindex(counts.shape):
        colour = "white" if shares[true_level, predicted_level] > 0.6 else "black"
        ax.text(predicted_level, true_level, str(counts[true_level, predicted_level]),
                ha="center", va="center", color=colour, fontsize=9)
    accuracy = np.trace(counts) / max(int(counts.sum()), 1)
    ax.set_title(f"{trait}\naccuracy {accuracy:.3f}", fontsize=10)
    ax.set_xticks(range(len(counts)), _tick_labels(len(counts)), fontsize=8)
    ax.set_yticks(range(len(counts)), _tick_labels(len(counts)), fontsize=8)
    ax.set_xlabel("predicted level")
    ax.set_ylabel("true level")
    return image


def _level_confusions(true_levels: np.ndarray, pred_levels: np.ndarray, targets: Targets) -> list[tuple[str, np.ndarray]]:
    """(name, counts [K, K]) of each level target (continuous targets have none)."""
    return [(target.name, level_confusion(true_levels[:, t], pred_levels[:, t], target.levels))
            for t, target in enumerate(targets) if not target.continuous]


def plot_confusion_matrices(true_levels: np.ndarray, pred_levels: np.ndarray, out_path: Path, title: str = "",
                            targets: Targets = BIG_FIVE) -> Path | None:
    """One PNG with a row-normalised, count-annotated confusion matrix per level target (None when there is none)."""
    confusions = _level_confusions(true_levels, pred_levels, targets)
    if not confusions:
        return None
    figure = new_figure(4.0 * len(confusions), 4.6)
    axes = np.atleast_1d(figure.subplots(1, len(confusions)))
    for ax, (trait, trait_counts) in zip(axes, confusions):
        image = _draw_confusion(ax, trait_counts, trait)
    figure.colorbar(image, ax=axes, shrink=0.8, label="share of the true level's clips")
    if title:
        figure.suptitle(title)
    return save_figure(figure, out_path)


def plot_confusion_matrix_per_trait(
    true_levels: np.ndarray, pred_levels: np.ndarray, out_dir: Path, prefix: str = "", targets: Targets = BIG_FIVE
) -> list[Path]:
    """One PNG per level target, ``<out_dir>/<prefix>confusion_<target>.png``."""
    paths = []
    for trait, trait_counts in _level_confusions(true_levels, pred_levels, targets):
        figure = new_figure(4.8, 4.4)
        ax = figure.subplots()
        figure.colorbar(_draw_confusion(ax, trait_counts, trait), ax=ax, shrink=0.8, label="share of the true level's clips")
        paths.append(save_figure(figure, Path(out_dir) / f"{prefix}confusion_{trait}.png"))
    return paths


def plot_training_curves(history: list[dict] | pd.DataFrame, out_path: Path, best_by: str = "val_f1_macro") -> Path:
    """Train/val loss, validation accuracy, macro-F1 and QWK, and (when the history has them) each trait's validation
    score with the epochs where its deep-path gate was open drawn solid; the best epoch by ``best_by`` is marked."""
    frame = pd.DataFrame(history)
    for column in ("epoch", "train_loss"):
        if column not in frame.columns:
            raise PerfexError(f"training history has no '{column}' column (it has {list(frame.columns)}); log it every epoch")
    if frame.empty:
        raise PerfexError("training history is empty; train for at least one epoch before plotting curves")
    frame = frame.sort_values("epoch")
    epochs = frame["epoch"].to_numpy()
    per_trait = [c for c in frame.columns if c.startswith("val_") and not c.startswith("val_gated_")
                 and (c.split("_", 2)[-1] in TRAITS or f"deep_{c.split('_', 2)[-1]}" in frame.columns)]
    figure = new_figure(16.5 if per_trait else 11.0, 4.2)
    axes = figure.subplots(1, 3 if per_trait else 2)
    loss_ax, score_ax = axes[0], axes[1]
    if per_trait:
        _draw_trait_curves(axes[2], frame, epochs, per_trait)
    panels = (
        (loss_ax, {"train_loss": "train loss", "val_loss": "validation loss"}, "loss"),
        (score_ax, {"val_accuracy": "validation accuracy", "val_f1_macro": "validation macro-F1", "val_qwk": "validation QWK"},
         "mean over traits"),
    )
    for ax, curves, y_label in panels:
        for column, label in curves.items():
            if column in frame.columns:
                ax.plot(epochs, frame[column].to_numpy(dtype=float), marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(y_label)
        ax.grid(alpha=0.3)
    best_values = frame[best_by].to_numpy(dtype=float) if best_by in frame.columns else np.array([np.nan])
    if not np.isnan(best_values).all():
        pick = np.nanargmin if best_by.endswith("loss") else np.nanargmax
        best = int(pick(best_values))
        for ax in axes:
            ax.axvline(epochs[best], color="grey", linestyle="--",
                       label=f"best epoch {epochs[best]} ({best_by} {best_values[best]:.3f})")
    loss_ax.set_title("loss")
    score_ax.set_title("validation")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return save_figure(figure, out_path)


def _draw_trait_curves(ax, frame: pd.DataFrame, epochs: np.ndarray, columns: list[str]) -> None:
    """Each trait's validation score over epochs: dotted where its deep-path gate is closed, markers where it is open."""
    for column in columns:
        trait = column.split("_", 2)[-1]
        values = frame[column].to_numpy(dtype=float)
        line = ax.plot(epochs, values, linestyle=":", label=trait)[0]
        gate = frame.get(f"deep_{trait}")
        if gate is not None:
            is_open = gate.to_numpy() > 0
            ax.plot(epochs[is_open], values[is_open], "o", markersize=4, color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(columns[0].split("_")[1])
    ax.set_title("per trait (dots: deep path on)")
    ax.grid(alpha=0.3)
