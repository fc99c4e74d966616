"""Start a model where logistic regression on clip AU mean/std ends: the statistics path fitted, the deep path silent.

The statistics path is a linear map of the clip's masked per-feature mean/std (of the normalised input); here it
gets the weights of one multinomial logistic regression per trait (for CORN outputs, the four conditional binary
ones "level > k given level >= k"; for a continuous target, ridge regression of its standardised value), the
regularisation chosen by cross-validation over the training clips' source videos, and the deep head's output
layer starts at zero.

Where the path also reads kernel features (``models.wide.KernelFeatures``: timing), each target may add one more
input: a ridge regression of its label on those features, cross-fitted over the same folds of source videos and
entering ``SCORE_SCALE`` times larger. The target keeps it only where it lowers the cross-validated loss by more
than one standard error over source videos, so a target whose signal is in the statistics (or nowhere) starts as
before; the kernel features are removed from a model no target uses them in (and
from a ``score`` output's, whose start reads the statistics alone). Training then adds what the time course
reveals, and model selection can always fall back on the starting point (epoch 0).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core.clips import ClipSet
from ..core.metrics import clip_summary_features
from ..core.schema import BIG_FIVE, Targets
from ..data.splits import group_keys
from .folds import HeldOutLoss, choose_by_folds, clearly_lower, held_out_losses
from .timing_score import RidgeFits, TimingScore, fit_kernel_biases, kernel_features, timing_score

C_CANDIDATES = (0.001, 0.01, 0.1, 1.0, 10.0)
RIDGE_ALPHAS = (1.0, 10.0, 100.0)
ABSENT_LEVEL_BIAS = -8.0  # a level no training clip has gets a logit far below the others
SCORE_SCALE = 10.0  # the timing score enters 10x larger, so the penalty that shrinks the statistics barely shrinks it


def normalised_statistics(model: nn.Module, clips: ClipSet) -> np.ndarray:
    """What the statistics path sees: per-clip mean and std of the model-normalised input, [N, 2F]."""
    summary = clip_summary_features(clips)
    mean, std = model.feature_mean.cpu().numpy().astype(np.float64), model.feature_std.cpu().numpy().astype(np.float64)
    n = clips.n_features
    return np.concatenate([(summary[:, :n] - mean) / std, summary[:, n:] / std], axis=1)


def _softmax_weights(x: np.ndarray, y: np.ndarray, c: float, seed: int, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """One multinomial logistic regression (inverse regularisation ``c``): weights [levels, 2F], biases [levels]."""
    from sklearn.linear_model import LogisticRegression

    weight, bias = np.zeros((n_levels, x.shape[1])), np.full(n_levels, ABSENT_LEVEL_BIAS)
    present = np.unique(y)
    if len(present) < 2:
        bias[present] = 0.0
        return weight, bias
    fitted = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x, y)
    two = len(fitted.classes_) == 2  # sklearn keeps one row for two classes; split it evenly between them
    weight[fitted.classes_] = np.vstack([-fitted.coef_[0] / 2, fitted.coef_[0] / 2]) if two else fitted.coef_
    bias[fitted.classes_] = np.array([-fitted.intercept_[0] / 2, fitted.intercept_[0] / 2]) if two else fitted.intercept_
    return weight, bias


def _corn_weights(x: np.ndarray, y: np.ndarray, c: float, seed: int, n_levels: int) -> tuple[np.ndarray, np.ndarray]:
    """CORN's conditional logistic regressions: row k predicts "level > k" from the clips with level >= k (the last
    row is unused); where one answer is certain, a large constant logit."""
    from sklearn.linear_model import LogisticRegression

    weight, bias = np.zeros((n_levels, x.shape[1])), np.zeros(n_levels)
    for k in range(n_levels - 1):
        rows = y >= k
        above = y[rows] > k
        if above.all() or not above.any():
            bias[k] = -ABSENT_LEVEL_BIAS if above.any() else ABSENT_LEVEL_BIAS
            continue
        fitted = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x[rows], above)
        weight[k], bias[k] = fitted.coef_[0], fitted.intercept_[0]
    return weight, bias


def _softmax(logits: np.ndarray) -> np.ndarray:
    """[N, L] logits -> [N, L] probabilities."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _corn_decode(logits: np.ndarray) -> np.ndarray:
    """NumPy twin of ``models.outputs.corn_probabilities`` for one trait: [N, L] logits -> [N, L] probabilities."""
    above = np.cumprod(1 / (1 + np.exp(-logits[:, :-1])), axis=1)
    return np.hstack([np.ones((len(logits), 1)), above]) - np.hstack([above, np.zeros((len(logits), 1))])


FITS = {"softmax": (_softmax_weights, _softmax), "corn": (_corn_weights, _corn_decode)}


def _log_losses(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(np.clip(probs[np.arange(len(y)), y], 1e-6, None))


def _fit_trait(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, output: str, n_levels: int,
               score: TimingScore | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Weights [levels, 2F (+1)] and biases [levels] of one trait's logistic regression for ``output`` (softmax or
    CORN), C (and whether to read the timing ``score``) by grouped cross-validation on the training clips
    (``_choose``), refitted on all of them; and whether the score is read."""
    fit, decode = FITS[output]

    def held_out_loss(choice: tuple[bool, float], inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
        inputs = _inputs(x, score.for_fold(outside) if choice[0] else None)
        weight, bias = fit(inputs[inside], y[inside], choice[1], seed, n_levels)
        return _log_losses(decode(inputs[outside] @ weight.T + bias), y[outside])

    with_score, c = _choose(C_CANDIDATES, score, held_out_loss, groups)
    return *fit(_inputs(x, score.crossed if with_score else None), y, c, seed, n_levels), with_score


def _choose(regularisations: tuple[float, ...], score: TimingScore | None, held_out_loss: HeldOutLoss,
            groups: np.ndarray) -> tuple[bool, float]:
    """(read the timing score, regularisation) by grouped cross-validation: the regularisation with the lowest held-out
    loss, and the score only where its best loss is lower than the statistics' best by more than one standard error
    (``clearly_lower``), so that a label the score does not help keeps the statistics alone."""
    alone = tuple((False, r) for r in regularisations)
    if score is None:
        return choose_by_folds(alone, held_out_loss, groups)
    choices = alone + tuple((True, r) for r in regularisations)
    losses = held_out_losses(choices, held_out_loss, groups)
    if losses is None:
        return alone[len(alone) // 2]
    best_alone, best_with = np.argmin(losses[: len(alone)].sum(axis=1)), len(alone) + np.argmin(losses[len(alone) :].sum(axis=1))
    return choices[best_with] if clearly_lower(losses[best_with], losses[best_alone], groups) else choices[best_alone]


def _inputs(x: np.ndarray, column: np.ndarray | None) -> np.ndarray:
    return x if column is None else np.hstack([x, SCORE_SCALE * column[:, None]])


@torch.no_grad()
def start_from_statistics(model: nn.Module, clips: ClipSet, train: np.ndarray, seed: int,
                          targets: Targets = BIG_FIVE) -> bool:
    """Fit the statistics path as logistic regression (CORN's conditional ones for ``corn`` outputs; ridge regression
    on the logit of the score for ``score`` outputs, on the standardised value for a continuous target) and silence the
    deep head; False without a statistics path."""
    if model.statistics is None:
        return False
    if model.config.output == "score":
        model.drop_kernel_features()  # its ridge start reads the statistics alone; kernels would only cost time
    statistics = normalised_statistics(model, clips)
    n_statistics = statistics.shape[1]
    features = statistics[train]
    if model.statistics.kernels is not None:
        fit_kernel_biases(model, clips, train, seed)
        features = np.hstack([features, kernel_features(model, clips, train)])
    model.statistics.set_statistics_normalization(features)
    mean, std = model.statistics.stat_mean.cpu().numpy(), model.statistics.stat_std.cpu().numpy()
    standardised = (features - mean) / std
    x, kernels = standardised[:, :n_statistics], standardised[:, n_statistics:]
    groups = group_keys(clips)[train]
    if model.config.output == "score":
        return _install(model, *_fit_scores(x, clips.scores[train], groups))
    values = targets.standardised(clips.scores)
    blocks, ridge = [], RidgeFits(kernels)
    for t, target in enumerate(targets):
        y = values[train, t] if target.continuous else clips.levels[train, t]
        known = np.isfinite(y) if target.continuous else y >= 0
        score = timing_score(ridge, np.where(known, y, 0.0), known, groups) if kernels.shape[1] else None
        weight, bias, with_score = (_fit_continuous(x, y, groups, score) if target.continuous else
                                    _fit_trait(x, y, groups, seed, model.config.output, target.levels, score))
        blocks.append(_unfold_score(weight, bias, with_score, score, kernels.shape[1]))
    weight = np.vstack([w for w, _ in blocks])
    if kernels.shape[1] and not weight[:, n_statistics:].any():
        model.drop_kernel_features()
        weight = weight[:, :n_statistics]
    return _install(model, weight, np.concatenate([b for _, b in blocks]))


def _unfold_score(weight: np.ndarray, bias: np.ndarray, with_score: bool, score: TimingScore | None,
                  n_kernels: int) -> tuple[np.ndarray, np.ndarray]:
    """A target's weights over [statistics, score] as weights over [statistics, kernel features] (the score is a linear
    map of those), and its biases; zero kernel weights when the target does not read the score."""
    if not with_score:
        return np.hstack([weight, np.zeros((len(weight), n_kernels))]), bias
    scaled = SCORE_SCALE * weight[:, -1:]
    return np.hstack([weight[:, :-1], scaled * score.weight[None, :]]), bias + scaled[:, 0] * score.bias


def _install(model: nn.Module, weight: np.ndarray, bias: np.ndarray) -> bool:
    """Statistics path = the fitted linear model; the deep head's output layer starts at zero."""
    model.statistics.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
    model.statistics.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    nn.init.zeros_(model.head[-1].weight)
    nn.init.zeros_(model.head[-1].bias)
    return True


def _fit_continuous(x: np.ndarray, y: np.ndarray, groups: np.ndarray,
                    score: TimingScore | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """A continuous target: ridge regression of its standardised value on the clips that have one (alpha, and whether
    to read the timing ``score``, by grouped cross-validation on the training clips), weights [1, 2F (+1)]."""
    from sklearn.linear_model import Ridge

    known = np.isfinite(y)

    def held_out_loss(choice: tuple[bool, float], inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
        inputs = _inputs(x, score.for_fold(outside) if choice[0] else None)
        inside, labelled = inside[known[inside]], known[outside]
        predicted = Ridge(alpha=choice[1]).fit(inputs[inside], y[inside]).predict(inputs[outside])
        return np.where(labelled, (predicted - np.where(labelled, y[outside], 0.0)) ** 2, 0.0)

    with_score, alpha = _choose(RIDGE_ALPHAS, score, held_out_loss, groups)
    best = Ridge(alpha=alpha).fit(_inputs(x, score.crossed if with_score else None)[known], y[known])
    return best.coef_[None, :], np.array([best.intercept_]), with_score


def _fit_scores(x: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Continuous targets: one ridge regression per trait on the logit of its score in [0, 1], alpha by the squared
    error of the predicted score in grouped cross-validation on the training clips (``choose_by_folds``)."""
    from sklearn.linear_model import Ridge

    weight, bias = np.zeros((scores.shape[1], x.shape[1])), np.zeros(scores.shape[1])
    clipped = np.clip(np.nan_to_num(scores, nan=0.5), 0.02, 0.98)
    logits = np.log(clipped / (1 - clipped))
    for t in range(scores.shape[1]):
        known = np.isfinite(scores[:, t])

        def held_out_loss(alpha: float, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
            inside = inside[known[inside]]
            if len(inside) == 0:
                return np.zeros(len(outside))
            predicted = 1 / (1 + np.exp(-Ridge(alpha=alpha).fit(x[inside], logits[inside, t]).predict(x[outside])))
            return np.where(known[outside], (predicted - np.nan_to_num(scores[outside, t], nan=0.5)) ** 2, 0.0)

        alpha = choose_by_folds(RIDGE_ALPHAS, held_out_loss, groups)
        best = Ridge(alpha=alpha).fit(x[known], logits[known, t])
        weight[t], bias[t] = best.coef_, best.intercept_
    return weight, bias
