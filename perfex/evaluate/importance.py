"""Whole-model importance for a test report: compute both rankings for a model, write Markdown, CSV and a bar chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.clips import ClipSet
from ..infer.predict import predict_probs
from ..core.schema import TRAITS
from ..data.splits import group_keys
from ..explain.attributions import BATCH_SIZE

IMPORTANCE_STEPS = 16  # fewer steps than per-clip explanations: the ranking averages over every test clip
from ..explain.clips import explain_clips
from ..explain.importance import attribution_importance, permutation_importance
from ..explain.plots import plot_importance

FILES = ("importance.md", "importance_attribution.csv", "importance_permutation.csv", "importance.png")


def model_importance(model: nn.Module, clips: ClipSet, *, device: torch.device | str = "cpu", batch_size: int = 64,
                     explain_batch_size: int = BATCH_SIZE, n_steps: int = IMPORTANCE_STEPS, n_repeats: int = 5,
                     n_boot: int = 1000, seed: int = 0, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(attribution table, permutation table) of ``model`` over the labelled ``clips`` (e.g. the test split)."""
    def predict_levels(part: ClipSet) -> np.ndarray:
        return predict_probs(model, part, batch_size=batch_size, device=device)[0].argmax(axis=2)

    groups = group_keys(clips)
    everything = np.arange(len(clips))
    explained = explain_clips(model, clips, everything, predict_levels(clips), batch_size=explain_batch_size,
                              device=device, n_steps=n_steps, progress=progress)
    attribution = attribution_importance(explained.attributions, list(clips.feature_names), groups, n_boot, seed)
    permutation = permutation_importance(predict_levels, clips, groups, n_repeats=n_repeats, n_boot=n_boot, seed=seed)
    return attribution, permutation


def importance_markdown(attribution: pd.DataFrame, permutation: pd.DataFrame, top: int = 5) -> str:
    """Per trait, the ``top`` AUs by mean |attribution| and by QWK drop when shuffled, with 95% intervals."""
    lines = ["## Which AUs the model uses", "",
             f"Top {top} AUs per trait. Attribution: mean over test clips of the mean |integrated gradient| per frame "
             "(target: log-probability of the predicted level; baseline: training mean). Permutation: drop in QWK "
             f"and accuracy when the AU's series is {_mode_text(permutation)}. Intervals: bootstrap 95%, source videos.",
             "", "| trait | rank | by attribution [95% CI] | by permutation: QWK drop [95% CI] | accuracy drop [95% CI] |",
             "| --- | ---: | --- | --- | --- |"]
    for trait in TRAITS:
        a = attribution[attribution["trait"] == trait].sort_values("rank").head(top)
        p = permutation[permutation["trait"] == trait].sort_values("rank").head(top)
        for k, (ra, rp) in enumerate(zip(a.itertuples(), p.itertuples()), start=1):
            lines.append(f"| {trait if k == 1 else ''} | {k} | {ra.feature} {_ci(ra, 'mean_abs_attribution')} | "
                         f"{rp.feature} {_ci(rp, 'qwk_drop')} | {_ci(rp, 'accuracy_drop')} |")
    return "\n".join(lines) + "\n"


def _mode_text(permutation: pd.DataFrame) -> str:
    shuffled = permutation["mode"].iloc[0] == "shuffle"
    return "taken from another clip (shuffled across clips)" if shuffled else "set to its training mean"


def _ci(row: object, name: str) -> str:
    return f"{getattr(row, name):.3g} [{getattr(row, name + '_low'):.3g}, {getattr(row, name + '_high'):.3g}]"


def write_importance(report_dir: str | Path, attribution: pd.DataFrame, permutation: pd.DataFrame) -> str:
    """Write importance.md, the two CSV tables and importance.png into ``report_dir``; returns the Markdown."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = importance_markdown(attribution, permutation)
    (out / FILES[0]).write_text(text)
    attribution.to_csv(out / FILES[1], index=False, float_format="%.6g")
    permutation.to_csv(out / FILES[2], index=False, float_format="%.6g")
    plot_importance(attribution, permutation, out / FILES[3])
    return text
