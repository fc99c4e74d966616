"""Whole-model importance for a test report: compute both rankings for a model, write Markdown, CSV and a bar chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..core.clips import ClipSet
from ..core.schema import Targets
from ..data.splits import group_keys
from ..explain.attributions import BATCH_SIZE
from ..explain.clips import explain_clips
from ..explain.importance import attribution_importance, permutation_importance, point_predictions, ranked_by
from ..explain.plots import plot_importance
from ..infer.predict import predict_probs

IMPORTANCE_STEPS = 16  # fewer steps than per-clip explanations: the ranking averages over every test clip
FILES = ("importance.md", "importance_attribution.csv", "importance_permutation.csv", "importance.png")
SCORE_NAMES = {"qwk_drop": ("QWK drop", "accuracy_drop", "accuracy drop"),
               "pearson_r_drop": ("Pearson r drop", "mae_rise", "MAE rise")}  # ranking score: its name, the other score


def model_importance(model: nn.Module, clips: ClipSet, *, device: torch.device | str = "cpu", batch_size: int = 64,
                     explain_batch_size: int = BATCH_SIZE, n_steps: int = IMPORTANCE_STEPS, n_repeats: int = 5,
                     n_boot: int = 1000, seed: int = 0, progress: bool = False,
                     targets: Targets | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(attribution table, permutation table) of ``model`` over the labelled ``clips`` (e.g. the test split), per target
    of ``targets`` (default ``clips.targets``: the checkpoint's, as the test script reads them)."""
    targets = targets or clips.targets

    def predict(part: ClipSet) -> np.ndarray:
        return point_predictions(predict_probs(model, part, batch_size=batch_size, device=device)[0], targets)

    groups = group_keys(clips)
    everything = np.arange(len(clips))
    levels = np.where(targets.continuous_mask, 0, predict(clips)).astype(np.int64)
    explained = explain_clips(model, clips, everything, levels, batch_size=explain_batch_size, device=device,
                              n_steps=n_steps, progress=progress, targets=targets)
    attribution = attribution_importance(explained.attributions, list(clips.feature_names), groups, n_boot, seed, targets)
    permutation = permutation_importance(predict, clips, groups, n_repeats=n_repeats, n_boot=n_boot, seed=seed,
                                         targets=targets)
    return attribution, permutation


def importance_markdown(attribution: pd.DataFrame, permutation: pd.DataFrame, top: int = 5) -> str:
    """Per target, the ``top`` AUs by mean |attribution| and by permutation importance (QWK drop for a level target,
    Pearson r drop for a continuous one), with 95% intervals."""
    column = attribution.columns[0]  # "trait" for the Big Five, else "target"
    names = list(dict.fromkeys(attribution[column]))
    scores = list(dict.fromkeys(ranked_by(permutation, name) for name in names))
    lines = ["## Which AUs the model uses", "",
             f"Top {top} AUs per {column}. Attribution: mean over test clips of the mean |integrated gradient| per frame "
             f"({_attributed_text(scores)}; baseline: training mean). Permutation: {_permutation_text(scores)} when the "
             f"AU's series is {_mode_text(permutation)}. Intervals: bootstrap 95%, source videos.", "",
             f"| {column} | rank | by attribution [95% CI] | by permutation: {_header(scores, 0)} [95% CI] | "
             f"{_header(scores, 2)} [95% CI] |", "| --- | ---: | --- | --- | --- |"]
    for name in names:
        score = ranked_by(permutation, name)
        a = attribution[attribution[column] == name].sort_values("rank").head(top)
        p = permutation[permutation[column] == name].sort_values("rank").head(top)
        for k, (ra, rp) in enumerate(zip(a.itertuples(), p.itertuples()), start=1):
            lines.append(f"| {name if k == 1 else ''} | {k} | {ra.feature} {_ci(ra, 'mean_abs_attribution')} | "
                         f"{rp.feature} {_ci(rp, score)} | {_ci(rp, SCORE_NAMES[score][1])} |")
    return "\n".join(lines) + "\n"


def _header(scores: list[str], part: int) -> str:
    """The table header of the ranking score (``part`` 0) or the other score (2), e.g. ``QWK drop / Pearson r drop``."""
    return " / ".join(SCORE_NAMES[score][part] for score in scores)


def _attributed_text(scores: list[str]) -> str:
    texts = {"qwk_drop": "log-probability of the predicted level", "pearson_r_drop": "predicted value"}
    if len(scores) == 1:
        return f"target: {texts[scores[0]]}"
    return f"target: {texts['qwk_drop']}, or for a continuous target the {texts['pearson_r_drop']}"


def _permutation_text(scores: list[str]) -> str:
    texts = {"qwk_drop": "drop in QWK and accuracy", "pearson_r_drop": "drop in Pearson r and rise in MAE in the label's units"}
    if len(scores) == 1:
        return texts[scores[0]]
    return f"{texts['qwk_drop']} (level targets), {texts['pearson_r_drop']} (continuous targets)"


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
