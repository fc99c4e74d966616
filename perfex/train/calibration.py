"""Per-trait temperature scaling fitted on validation logits, and calibration metrics (ECE, Brier, RPS).

Probabilities are ``[N, targets, L levels]``; levels are ``[N, targets]`` integers. A continuous target has no
temperature (it stays 1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import minimize_scalar

from torch import nn

from ..core.errors import PerfexError
from ..core.schema import BIG_FIVE, Targets
from .losses import level_probabilities

Decode = Callable[[torch.Tensor, np.ndarray], torch.Tensor]  # (logits, temperatures) -> probabilities [N, targets, L]


def _nll(probs: torch.Tensor, levels: torch.Tensor) -> float:
    picked = probs.gather(-1, levels[..., None])[..., 0]
    return float(-picked.clamp(min=1e-12).log().mean())


def fit_temperatures(logits: np.ndarray, levels: np.ndarray, loss: str = "ce") -> np.ndarray:
    """One temperature per trait of Big Five logits [N, 25] trained with ``loss`` (logits / T), minimising validation
    NLL; bounded to [0.05, 20]."""
    logits = np.asarray(logits, dtype=np.float32)
    if logits.ndim != 2 or logits.shape[1] != 25:
        raise PerfexError(f"temperature fit needs [N, 25] logits; got {logits.shape}")
    return _fit(lambda x, t: level_probabilities(apply_temperatures(x, t), loss), logits, levels, BIG_FIVE)


def fit_model_temperatures(model: nn.Module, logits: np.ndarray, levels: np.ndarray, targets: Targets) -> np.ndarray:
    """One temperature per level target of ``model`` (1 for continuous targets), minimising validation NLL."""
    def decode(x: torch.Tensor, temperatures: np.ndarray) -> torch.Tensor:
        model.set_temperatures(temperatures)
        return model.level_probabilities(x)

    return _fit(decode, np.asarray(logits, dtype=np.float32), levels, targets)


def _fit(decode: Decode, logits: np.ndarray, levels: np.ndarray, targets: Targets) -> np.ndarray:
    """Per level target, the temperature in [0.05, 20] whose decoded probabilities give the lowest NLL."""
    logits_t = torch.as_tensor(logits)
    levels_t = torch.as_tensor(np.asarray(levels, dtype=np.int64))
    if len(logits_t) == 0 or levels_t.shape != (len(logits_t), len(targets)):
        raise PerfexError(f"temperature fit needs logits and [N, {len(targets)}] levels for the same windows; got "
                          f"{tuple(logits_t.shape)} and {tuple(levels_t.shape)}")
    temperatures = np.ones(len(targets))
    for i, target in enumerate(targets):
        if target.continuous:
            continue

        def nll(log_t: float, i: int = i) -> float:
            trial = temperatures.copy()
            trial[i] = float(np.exp(log_t))
            return _nll(decode(logits_t, trial)[:, i], levels_t[:, i])
        temperatures[i] = float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded").x))
    return temperatures


def apply_temperatures(logits: torch.Tensor, temperatures: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Divide each trait's logits by its temperature: [B, traits * levels] -> the same shape."""
    t = torch.as_tensor(np.asarray(temperatures, dtype=np.float32), device=logits.device)
    return (logits.float().reshape(len(logits), len(t), -1) / t[None, :, None]).reshape(logits.shape)


def expected_calibration_error(probs: np.ndarray, levels: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE (equal-width confidence bins), averaged over traits."""
    confidence, predicted = probs.max(axis=-1), probs.argmax(axis=-1)
    correct = (predicted == levels).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    errors = []
    for trait in range(probs.shape[1]):
        which = np.clip(np.digitize(confidence[:, trait], edges[1:-1]), 0, bins - 1)
        gap = sum(abs(correct[which == b, trait].mean() - confidence[which == b, trait].mean()) * (which == b).mean()
                  for b in range(bins) if (which == b).any())
        errors.append(gap)
    return float(np.mean(errors))


def brier_score(probs: np.ndarray, levels: np.ndarray) -> float:
    """Multi-class Brier score: squared distance to the one-hot level, summed over levels, mean over clips and traits."""
    onehot = np.eye(probs.shape[-1])[levels]
    return float(((probs - onehot) ** 2).sum(axis=-1).mean())


def ranked_probability_score(probs: np.ndarray, levels: np.ndarray) -> float:
    """RPS: squared distance of the cumulative distributions over the ordered levels / (levels - 1); lower is better."""
    onehot = np.eye(probs.shape[-1])[levels]
    gap = np.cumsum(probs, axis=-1) - np.cumsum(onehot, axis=-1)
    return float((gap[..., :-1] ** 2).sum(axis=-1).mean() / (probs.shape[-1] - 1))


def negative_log_likelihood(probs: np.ndarray, levels: np.ndarray) -> float:
    """Mean over clips and traits of -log p(true level)."""
    picked = np.take_along_axis(probs, levels[..., None], axis=-1)[..., 0]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def calibration_report(probs: np.ndarray, levels: np.ndarray) -> dict:
    """ECE, Brier, RPS and NLL of one set of probabilities."""
    return {"ece": expected_calibration_error(probs, levels), "brier": brier_score(probs, levels),
            "rps": ranked_probability_score(probs, levels), "nll": negative_log_likelihood(probs, levels)}


def reliability_diagram(curves: dict[str, np.ndarray], levels: np.ndarray, path: Path, bins: int = 10) -> Path:
    """Accuracy vs confidence (all traits pooled), one line per named set of probabilities; written as PNG."""
    from ..core.plots import new_figure, save_figure

    figure = new_figure(4.5, 4.5)
    axis = figure.add_subplot()
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    edges = np.linspace(0, 1, bins + 1)
    for name, probs in curves.items():
        confidence = probs.max(axis=-1).ravel()
        correct = (probs.argmax(axis=-1) == levels).ravel()
        which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
        used = [b for b in range(bins) if (which == b).sum() >= 5]
        axis.plot([confidence[which == b].mean() for b in used], [correct[which == b].mean() for b in used], marker="o", label=name)
    axis.set(xlabel="confidence (top level)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1), title="reliability")
    axis.legend(loc="upper left")
    return save_figure(figure, path)
