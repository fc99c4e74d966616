"""Metrics, bootstrap intervals and trivial baselines, target by target: K ordered levels (the Big Five's five by
default), binary, or continuous."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from .clips import ClipSet
from .errors import PerfexError
from .schema import BIG_FIVE, N_LEVELS, TRAITS, Target, Targets

N_TRAITS = len(TRAITS)
METRIC_NAMES = (
    "accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc_ovr_macro", "mae", "one_minus_mae", "pearson_r",
    "qwk", "off_by_one_accuracy", "mae_levels", "ccc", "rmse",
)
BINARY_METRIC_NAMES = ("accuracy", "roc_auc", "f1_macro", "brier", "precision_macro", "recall_macro", "pearson_r")
CONTINUOUS_METRIC_NAMES = ("mae", "pearson_r", "ccc", "r2", "rmse")
METRICS_BY_KIND = {"ordinal": METRIC_NAMES, "binary": BINARY_METRIC_NAMES, "continuous": CONTINUOUS_METRIC_NAMES}
HEADLINE_METRICS = {"ordinal": ("accuracy", "qwk"), "binary": ("accuracy", "roc_auc"), "continuous": ("pearson_r", "mae")}
BASELINE_NAMES = ("majority", "train_mean", "logreg_au_stats", "ridge_au_stats")
# which baselines apply to a target of each kind (the others predict nothing for it)
BASELINES_BY_KIND = {"ordinal": BASELINE_NAMES, "binary": ("majority", "logreg_au_stats"),
                     "continuous": ("train_mean", "ridge_au_stats")}
BASELINE_DESCRIPTIONS = {
    "majority": "majority level of the training clips",
    "train_mean": "training mean score",
    "logreg_au_stats": "logistic regression on per-clip feature mean/std",
    "ridge_au_stats": "ridge regression of the scores on per-clip feature mean/std",
}


def _check_levels(levels: np.ndarray, name: str, targets: Targets = BIG_FIVE) -> np.ndarray:
    """``levels`` as an int64 [N, targets] array of classes 0..K-1 (any value for a continuous target), or a
    PerfexError naming ``name``."""
    levels = np.asarray(levels)
    if levels.ndim != 2 or levels.shape[1] != len(targets):
        raise PerfexError(f"{name} has shape {levels.shape}; expected [n_clips, {len(targets)}] levels in the order "
                          f"{', '.join(targets.names)}")
    if len(levels) == 0:
        raise PerfexError(f"{name} holds no clips; evaluate on a non-empty labelled set")
    top = np.array([t.levels if not t.continuous else np.iinfo(np.int64).max for t in targets])
    bad = np.argwhere((levels < 0) | (levels >= top) | (levels != np.round(levels)))
    if len(bad):
        row, trait = bad[0]
        raise PerfexError(
            f"{name} row {row} has {targets.names[trait]} level {levels[row, trait]}; levels must be integers "
            f"0..{targets[trait].levels - 1} (-1 means unlabeled: evaluate only labelled clips)"
        )
    return levels.astype(np.int64)


def _check_probs(probs: np.ndarray, n_clips: int | None = None, targets: Targets = BIG_FIVE) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[1:] != (len(targets), targets.n_levels) or probs.ndim != 3:
        raise PerfexError(f"probs has shape {probs.shape}; expected [n_clips, {len(targets)}, {targets.n_levels}] "
                          "level probabilities")
    if n_clips is not None and len(probs) != n_clips:
        raise PerfexError(f"probs has {len(probs)} clips but the labels have {n_clips}; pass predictions for the same clips")
    levelled = ~targets.continuous_mask
    not_predicted = np.isnan(probs).all(axis=2, keepdims=True)  # a baseline may predict nothing for a target's kind
    invalid = (~np.isfinite(probs) & ~not_predicted) | ((probs < 0) & levelled[None, :, None])
    if invalid.any():
        row = int(np.argwhere(invalid)[0, 0])
        raise PerfexError(f"probs row {row} holds a negative or non-finite value; pass softmax probabilities, not logits")
    return probs


def _check_scores(scores: np.ndarray, n_clips: int, name: str, n_targets: int = N_TRAITS) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n_clips, n_targets):
        raise PerfexError(f"{name} has shape {scores.shape}; expected [{n_clips}, {n_targets}] scores, one per target")
    return scores


def clip_summary_features(clips: ClipSet) -> np.ndarray:
    """Per-clip mean and standard deviation of every feature, [N, 2F] float64 (zeros for empty clips)."""
    lengths = clips.lengths
    n_features = clips.n_features
    summary = np.zeros((len(clips), 2 * n_features), dtype=np.float64)
    present = lengths > 0
    if not present.any():
        return summary
    frames = clips.features.astype(np.float64)
    # Empty clips own no rows, so reducing at the starts of the non-empty clips sums exactly each clip.
    starts = clips.offsets[:-1][present]
    counts = lengths[present][:, None].astype(np.float64)
    means = np.add.reduceat(frames, starts, axis=0) / counts
    deviations = frames - np.repeat(means, lengths[present], axis=0)
    stds = np.sqrt(np.add.reduceat(deviations**2, starts, axis=0) / counts)
    summary[present, :n_features] = means
    summary[present, n_features:] = stds
    return summary


def _roc_auc_ovr_macro(y_true: np.ndarray, level_probs: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the levels present in ``y_true``; NaN with fewer than two."""
    from sklearn.metrics import roc_auc_score

    present = np.unique(y_true)
    if len(present) < 2:
        return math.nan
    return float(np.mean([roc_auc_score(y_true == level, level_probs[:, level]) for level in present]))


def _pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation, NaN when either side is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    return float(x @ y) / denominator if denominator > 1e-12 else math.nan


def quadratic_weighted_kappa(y_true: np.ndarray, y_pred: np.ndarray, n_levels: int = N_LEVELS) -> float:
    """Cohen's kappa with quadratic weights on ordered levels; NaN when the expected disagreement is zero."""
    observed = np.zeros((n_levels, n_levels))
    np.add.at(observed, (y_true, y_pred), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / max(len(y_true), 1)
    grid = np.arange(n_levels)
    weights = (grid[:, None] - grid[None, :]) ** 2 / (n_levels - 1) ** 2
    denominator = float((weights * expected).sum())
    return 1.0 - float((weights * observed).sum()) / denominator if denominator > 1e-12 else math.nan


def concordance_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient: agreement in correlation, scale and location."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    denominator = x.var() + y.var() + (x.mean() - y.mean()) ** 2
    return float(2 * np.mean((x - x.mean()) * (y - y.mean())) / denominator) if denominator > 1e-12 else math.nan


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _one_trait_metrics(y_true: np.ndarray, level_probs: np.ndarray, true_score: np.ndarray, pred_score: np.ndarray,
                       n_levels: int = N_LEVELS) -> dict:
    from sklearn.metrics import precision_recall_fscore_support

    y_pred = level_probs.argmax(axis=1)
    labels = np.union1d(y_true, y_pred)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    mae = float(np.mean(np.abs(pred_score - true_score)))
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "precision_macro": float(precision),
        "recall_macro": float(recall),
        "f1_macro": float(f1),
        "roc_auc_ovr_macro": _roc_auc_ovr_macro(y_true, level_probs),
        "mae": mae,
        "one_minus_mae": 1.0 - mae,
        "pearson_r": _pearson_r(pred_score, true_score),
        "qwk": quadratic_weighted_kappa(y_true, y_pred, n_levels),
        "off_by_one_accuracy": float(np.mean(np.abs(y_true - y_pred) <= 1)),
        "mae_levels": float(np.mean(np.abs(y_true - y_pred))),
        "ccc": concordance_correlation(pred_score, true_score),
        "rmse": float(np.sqrt(np.mean((pred_score - true_score) ** 2))),
    }


def _binary_metrics(y_true: np.ndarray, level_probs: np.ndarray) -> dict:
    """Accuracy, ROC AUC, macro-F1, Brier score, precision, recall and r of P(level 1) for a binary target."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    y_pred = level_probs.argmax(axis=1)
    p_one = level_probs[:, 1]
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=np.union1d(y_true, y_pred), average="macro", zero_division=0)
    auc = float(roc_auc_score(y_true, p_one)) if len(np.unique(y_true)) == 2 else math.nan
    return {"accuracy": float(np.mean(y_true == y_pred)), "roc_auc": auc, "f1_macro": float(f1),
            "brier": float(np.mean((p_one - y_true) ** 2)), "precision_macro": float(precision),
            "recall_macro": float(recall), "pearson_r": _pearson_r(p_one, y_true.astype(np.float64))}


def _continuous_metrics(true_value: np.ndarray, pred_value: np.ndarray) -> dict:
    """MAE, Pearson r, Lin's CCC, R² and RMSE of a continuous target, in its own units."""
    error = pred_value - true_value
    total = float(((true_value - true_value.mean()) ** 2).sum())
    return {"mae": float(np.mean(np.abs(error))), "pearson_r": _pearson_r(pred_value, true_value),
            "ccc": concordance_correlation(pred_value, true_value),
            "r2": 1.0 - float((error**2).sum()) / total if total > 1e-12 else math.nan,
            "rmse": float(np.sqrt(np.mean(error**2)))}


def _target_metrics(target: Target, y_true: np.ndarray, outputs: np.ndarray, true_score: np.ndarray,
                    pred_score: np.ndarray) -> dict:
    """The metrics of one target's kind (NaN for each when nothing was predicted for it)."""
    if np.isnan(pred_score).all():
        return dict.fromkeys(METRICS_BY_KIND[target.kind], math.nan)
    if target.continuous:
        return _continuous_metrics(true_score, pred_score)
    if target.levels == 2:
        return _binary_metrics(y_true, outputs[:, :2])
    return _one_trait_metrics(y_true, outputs[:, : target.levels], true_score, pred_score, target.levels)


def metric_names(targets: Targets) -> tuple[str, ...]:
    """Every metric some target of ``targets`` has, in a stable order (the Big Five's: ``METRIC_NAMES``)."""
    names = [name for kind in ("ordinal", "binary", "continuous") if kind in {t.kind for t in targets}
             for name in METRICS_BY_KIND[kind]]
    return tuple(dict.fromkeys(names))


def trait_metrics(
    true_levels: np.ndarray,
    probs: np.ndarray,
    true_scores: np.ndarray | None = None,
    pred_scores: np.ndarray | None = None,
    targets: Targets = BIG_FIVE,
) -> dict:
    """Metrics per target, by its kind, and averaged over targets (NaN left out of the mean).

    Scores default to ``targets.scores(probs)`` (predicted) and the level's grid value ``level / (K - 1)`` (true; also
    used where ``true_scores`` is NaN). Returns ``{"per_trait": {target: {...}}, "mean": {...}, "n_clips": N}``.
    """
    true_levels = _check_levels(true_levels, "true_levels", targets)
    n_clips = len(true_levels)
    probs = _check_probs(probs, n_clips, targets)
    level_scores = true_levels / np.array([max(t.levels - 1, 1) for t in targets], dtype=np.float64)
    if true_scores is None:
        true_scores = level_scores
    else:
        true_scores = _check_scores(true_scores, n_clips, "true_scores", len(targets))
        true_scores = np.where(np.isfinite(true_scores), true_scores, level_scores)
    pred_scores = (targets.scores(probs) if pred_scores is None
                   else _check_scores(pred_scores, n_clips, "pred_scores", len(targets)))
    per_trait = {
        target.name: _target_metrics(target, true_levels[:, t], probs[:, t], true_scores[:, t], pred_scores[:, t])
        for t, target in enumerate(targets)
    }
    mean = {name: _nanmean([m[name] for m in per_trait.values() if name in m]) for name in metric_names(targets)}
    return {"per_trait": per_trait, "mean": mean, "n_clips": n_clips}


def bootstrap_rows(groups: np.ndarray, n_boot: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``n_boot`` resamples of row indices: each draws as many whole groups (source videos) as there are, with
    replacement, and takes every row of each; pass ``np.arange(n)`` (one group per row) to resample rows."""
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) == 0:
        raise PerfexError(f"groups has shape {groups.shape}; pass one group key (source video) per row, for at least one row")
    if n_boot < 1:
        raise PerfexError(f"n_boot is {n_boot}; use a positive number of bootstrap resamples, e.g. 1000")
    _, group_of = np.unique(groups, return_inverse=True)
    order = np.argsort(group_of, kind="stable")
    sizes = np.bincount(group_of)
    starts = np.cumsum(sizes) - sizes
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        chosen = rng.integers(0, len(sizes), len(sizes))
        yield order[_concatenated_ranges(starts[chosen], sizes[chosen])]


def _concatenated_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + n) for s, n in zip(starts, lengths)])`` without the Python loop."""
    ends = np.cumsum(lengths)
    return np.arange(ends[-1]) + np.repeat(starts - (ends - lengths), lengths)


def bootstrap_interval(statistic: Callable[[np.ndarray], float | np.ndarray], groups: np.ndarray, n_boot: int,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile interval (each end shaped like ``statistic``'s value) of ``statistic(rows)`` over
    ``bootstrap_rows(groups, n_boot, seed)``; non-finite values are left out (NaN where every draw is)."""
    draws = np.array([statistic(rows) for rows in bootstrap_rows(groups, n_boot, seed)], dtype=np.float64)
    draws[~np.isfinite(draws)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: their interval is NaN
        low, high = np.nanpercentile(draws, [2.5, 97.5], axis=0)
    return low, high


def bootstrap_mean_accuracy(
    true_levels: np.ndarray,
    pred_levels: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    groups: np.ndarray | None = None,
    targets: Targets = BIG_FIVE,
) -> tuple[float, float]:
    """95% percentile interval of the mean (over level targets) accuracy, resampling clips or whole ``groups``."""
    true_levels = _check_levels(true_levels, "true_levels", targets)
    pred_levels = _check_levels(pred_levels, "pred_levels", targets)
    if pred_levels.shape != true_levels.shape:
        raise PerfexError(f"pred_levels has shape {pred_levels.shape} but true_levels {true_levels.shape}; pass the same clips")
    groups = np.arange(len(true_levels)) if groups is None else np.asarray(groups)
    if groups.shape != (len(true_levels),):
        raise PerfexError(f"groups has shape {groups.shape}; expected one source-video key per clip ({len(true_levels)})")
    levelled = [t for t, target in enumerate(targets) if not target.continuous]
    if not levelled:
        return math.nan, math.nan
    correct_per_clip = (true_levels[:, levelled] == pred_levels[:, levelled]).mean(axis=1)
    low, high = bootstrap_interval(lambda rows: correct_per_clip[rows].mean(), groups, n_boot, seed)
    return float(low), float(high)


def _one_hot(levels: np.ndarray, n_levels: int = N_LEVELS) -> np.ndarray:
    """[N, T] levels -> [N, T, L] one-hot probabilities."""
    return np.eye(n_levels)[levels]


def _logreg_level_probs(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int,
                        n_levels: int = N_LEVELS) -> np.ndarray:
    """[N_test, L] level probabilities of a logistic regression; levels absent from training get 0."""
    from sklearn.linear_model import LogisticRegression

    probs = np.zeros((len(test_x), n_levels))
    present = np.unique(train_y)
    if len(present) == 1:
        probs[:, present[0]] = 1.0
        return probs
    model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(train_x, train_y)
    probs[:, model.classes_] = model.predict_proba(test_x)
    return probs


def _check_baseline_features(train_features: np.ndarray, test_features: np.ndarray, n_train: int) -> tuple[np.ndarray, np.ndarray]:
    """Both feature tables as float64, one row per clip, the same columns, all finite."""
    train_features = np.asarray(train_features, dtype=np.float64)
    test_features = np.asarray(test_features, dtype=np.float64)
    if train_features.ndim != 2 or len(train_features) != n_train:
        raise PerfexError(
            f"train_features has shape {train_features.shape}; expected one feature row per training clip ({n_train})"
        )
    if test_features.ndim != 2 or test_features.shape[1] != train_features.shape[1]:
        raise PerfexError(
            f"test_features has shape {test_features.shape} but train_features {train_features.shape}; use the same feature columns"
        )
    for name, features in (("train_features", train_features), ("test_features", test_features)):
        if not np.isfinite(features).all():
            row = int(np.argwhere(~np.isfinite(features))[0, 0])
            raise PerfexError(f"{name} row {row} holds NaN or inf; drop or fill missing frames before evaluation")
    return train_features, test_features


def baseline_predictions(
    train_levels: np.ndarray,
    train_scores: np.ndarray | None,
    train_features: np.ndarray,
    test_features: np.ndarray,
    seed: int = 0,
    targets: Targets = BIG_FIVE,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (outputs [N, targets, L], pred_scores [N, targets])`` for the test clips, each baseline fitted on
    training clips only, target by target; a baseline that does not apply to a target's kind (``BASELINES_BY_KIND``)
    predicts NaN for it."""
    from sklearn.preprocessing import StandardScaler

    train_levels = _check_levels(train_levels, "train_levels", targets)
    train_features, test_features = _check_baseline_features(train_features, test_features, len(train_levels))
    n_test, width = len(test_features), targets.n_levels
    scores = (np.full(train_levels.shape, np.nan) if train_scores is None
              else _check_scores(train_scores, len(train_levels), "train_scores", len(targets)))
    scaler = StandardScaler().fit(train_features)
    train_x, test_x = scaler.transform(train_features), scaler.transform(test_features)
    predictions = {name: (np.full((n_test, len(targets), width), np.nan), np.full((n_test, len(targets)), np.nan))
                   for name in BASELINE_NAMES}
    for t, target in enumerate(targets):
        fitted = (_continuous_baselines(train_x, scores[:, t], test_x, target) if target.continuous
                  else _level_baselines(train_x, train_levels[:, t], scores[:, t], test_x, target, seed))
        for name, (outputs, values) in fitted.items():
            predictions[name][0][:, t] = 0.0
            predictions[name][0][:, t, : outputs.shape[1]] = outputs
            predictions[name][1][:, t] = values
    return predictions


def _level_baselines(train_x: np.ndarray, y: np.ndarray, scores: np.ndarray, test_x: np.ndarray, target: Target,
                     seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A level target's baselines: ``name -> (level probabilities [N, K], predicted scores [N])`` (binary: majority and
    logistic regression only)."""
    n_test, k = len(test_x), target.levels
    grid_scores = np.where(np.isfinite(scores), scores, y / (k - 1))
    majority = int(np.bincount(y, minlength=k).argmax())
    mean_score = grid_scores.mean()
    mean_level = int(np.clip(np.rint(mean_score * (k - 1)), 0, k - 1))
    logreg = _logreg_level_probs(train_x, y, test_x, seed, k)
    fitted = {
        "majority": (_one_hot(np.full(n_test, majority), k), np.full(n_test, majority / (k - 1))),
        "train_mean": (_one_hot(np.full(n_test, mean_level), k), np.full(n_test, mean_score)),
        "logreg_au_stats": (logreg, logreg @ np.arange(k, dtype=np.float64) / (k - 1)),
        "ridge_au_stats": _ridge_prediction(train_x, grid_scores, test_x, k),
    }
    return {name: fitted[name] for name in BASELINES_BY_KIND[target.kind]}


def _continuous_baselines(train_x: np.ndarray, values: np.ndarray, test_x: np.ndarray,
                          target: Target) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A continuous target's baselines, training mean and ridge regression: ``name -> (standardised values [N, 1],
    values in the label's units [N])``."""
    from sklearn.linear_model import Ridge

    known = np.isfinite(values)
    predicted = {"train_mean": np.full(len(test_x), values[known].mean()),
                 "ridge_au_stats": Ridge(alpha=10.0).fit(train_x[known], values[known]).predict(test_x)}
    return {name: (((v - target.center) / target.scale)[:, None], v) for name, v in predicted.items()}


def _ridge_prediction(train_x: np.ndarray, train_scores: np.ndarray, test_x: np.ndarray,
                      n_levels: int = N_LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """Ridge regression of each trait's score (clipped to [0, 1]) and its two-level probabilities."""
    from sklearn.linear_model import Ridge

    scores = np.clip(Ridge(alpha=10.0).fit(train_x, train_scores).predict(test_x), 0, 1)
    position = scores * (n_levels - 1)
    lower = np.minimum(np.floor(position), n_levels - 2).astype(np.int64)
    probs = np.zeros((*scores.shape, n_levels))
    np.put_along_axis(probs, lower[..., None], (1 - (position - lower))[..., None], axis=-1)
    np.put_along_axis(probs, lower[..., None] + 1, (position - lower)[..., None], axis=-1)
    return probs, scores


def evaluate_with_baselines(
    true_levels: np.ndarray,
    probs: np.ndarray,
    true_scores: np.ndarray | None,
    train_levels: np.ndarray,
    train_scores: np.ndarray | None,
    train_features: np.ndarray,
    test_features: np.ndarray,
    groups: np.ndarray | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    targets: Targets = BIG_FIVE,
) -> dict:
    """The model's metrics with a bootstrap CI of its mean accuracy, beside the baselines' metrics."""
    model = trait_metrics(true_levels, probs, true_scores, targets=targets)
    pred_levels = targets.predicted_levels(probs)
    model["accuracy_ci95"] = list(bootstrap_mean_accuracy(true_levels, pred_levels, n_boot, seed, groups, targets))
    baselines = {
        name: trait_metrics(true_levels, baseline_probs, true_scores, baseline_scores, targets=targets)
        for name, (baseline_probs, baseline_scores) in baseline_predictions(
            train_levels, train_scores, train_features, test_features, seed, targets
        ).items()
    }
    n_units = len(true_levels) if groups is None else len(np.unique(np.asarray(groups)))
    return {
        "model": model,
        "baselines": baselines,
        "n_test_clips": len(true_levels),
        "bootstrap": {"n_boot": n_boot, "unit": "clip" if groups is None else "source video", "n_units": n_units},
    }


def confusion_matrices(true_levels: np.ndarray, pred_levels: np.ndarray) -> np.ndarray:
    """Counts ``[trait, true level, predicted level]`` as an int64 [5, 5, 5] array."""
    true_levels = _check_levels(true_levels, "true_levels")
    pred_levels = _check_levels(pred_levels, "pred_levels")
    if pred_levels.shape != true_levels.shape:
        raise PerfexError(f"pred_levels has shape {pred_levels.shape} but true_levels {true_levels.shape}; pass the same clips")
    return np.stack([level_confusion(true_levels[:, t], pred_levels[:, t], N_LEVELS) for t in range(N_TRAITS)])


def level_confusion(true_levels: np.ndarray, pred_levels: np.ndarray, n_levels: int) -> np.ndarray:
    """Counts ``[true level, predicted level]`` of one target with ``n_levels`` levels, int64 [K, K]."""
    cell = np.asarray(true_levels, dtype=np.int64) * n_levels + np.asarray(pred_levels, dtype=np.int64)
    return np.bincount(cell, minlength=n_levels * n_levels).reshape(n_levels, n_levels)
