"""Metrics, baselines, bootstrap, report tables and plots of perfex.evaluate / perfex.core.plots."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfex.core import metrics as evaluate
from perfex.core.schema import BIG_FIVE
from perfex.evaluate import report
from perfex.core.clips import ClipSet
from perfex.core.errors import PerfexError
from perfex.core.plots import plot_confusion_matrices, plot_confusion_matrix_per_trait, plot_training_curves
from perfex.core.schema import TRAITS

from helpers import REAL

pytestmark = pytest.mark.unit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def one_hot(levels: np.ndarray, confidence: float = 1.0) -> np.ndarray:
    """[N, 5] levels -> [N, 5, 5] probabilities with ``confidence`` on the given level."""
    probs = np.full((*levels.shape, 5), (1.0 - confidence) / 4)
    np.put_along_axis(probs, levels[..., None], confidence, axis=-1)
    return probs


def noisy_predictions(true_levels: np.ndarray, hit_rate: float, rng: np.random.Generator) -> np.ndarray:
    return np.where(rng.random(true_levels.shape) < hit_rate, true_levels, rng.integers(0, 5, true_levels.shape))


def test_expected_scores_weights_levels_by_probability():
    probs = np.zeros((2, 5, 5))
    probs[0, :, 4] = 1.0
    probs[1, :, [1, 3]] = 0.5
    probs[1, 0] = [0.2, 0.2, 0.2, 0.2, 0.2]
    scores = BIG_FIVE.scores(probs)
    assert scores.shape == (2, 5)
    np.testing.assert_allclose(scores[0], 1.0)
    np.testing.assert_allclose(scores[1], [0.5, 0.5, 0.5, 0.5, 0.5])
    probs[1, 1] = [0.0, 0.0, 0.0, 0.5, 0.5]
    assert BIG_FIVE.scores(probs)[1, 1] == pytest.approx(0.875)


def test_trait_metrics_on_hand_checked_input():
    true = np.array([[0, 1, 2, 3, 4], [1, 1, 2, 3, 4], [2, 1, 2, 3, 4], [2, 2, 2, 3, 4]])
    pred = true.copy()
    pred[0, 0] = 1  # extroversion: 3 of 4 right
    pred[:, 1] = 1  # neuroticism: 3 of 4 right
    result = evaluate.trait_metrics(true, one_hot(pred))
    extroversion = result["per_trait"]["extroversion"]
    assert extroversion["accuracy"] == pytest.approx(0.75)
    assert extroversion["mae"] == pytest.approx(0.25 / 4)
    assert extroversion["one_minus_mae"] == pytest.approx(1 - 0.25 / 4)
    # Labels 0, 1, 2: recall 0, 1, 1 and precision 0, 0.5, 1.
    assert extroversion["recall_macro"] == pytest.approx(2 / 3)
    assert extroversion["precision_macro"] == pytest.approx(0.5)
    assert result["per_trait"]["neuroticism"]["accuracy"] == pytest.approx(0.75)
    assert result["per_trait"]["agreeableness"]["accuracy"] == 1.0
    assert result["mean"]["accuracy"] == pytest.approx((0.75 + 0.75 + 1 + 1 + 1) / 5)
    assert result["n_clips"] == 4


def test_mae_uses_expected_scores_not_the_argmax():
    true = np.full((1, 5), 2)
    probs = np.zeros((1, 5, 5))
    probs[0, :, 2] = 0.6
    probs[0, :, 4] = 0.4  # expected level 2.8 -> score 0.7, argmax still right
    metrics = evaluate.trait_metrics(true, probs)["mean"]
    assert metrics["accuracy"] == 1.0
    assert metrics["mae"] == pytest.approx(0.2)


def test_given_scores_override_levels_and_expected_scores():
    true = np.array([[2] * 5, [3] * 5])
    true_scores = np.array([[0.55] * 5, [np.nan] * 5])  # NaN falls back to level / 4 = 0.75
    pred_scores = np.array([[0.5] * 5, [0.7] * 5])
    metrics = evaluate.trait_metrics(true, one_hot(true), true_scores, pred_scores)["mean"]
    assert metrics["mae"] == pytest.approx((0.05 + 0.05) / 2)


def test_perfect_predictions_score_perfectly():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 5, (60, 5))
    metrics = evaluate.trait_metrics(true, one_hot(true, confidence=0.9))["mean"]
    assert metrics["accuracy"] == 1.0
    assert metrics["f1_macro"] == 1.0
    assert metrics["roc_auc_ovr_macro"] == 1.0
    exact = evaluate.trait_metrics(true, one_hot(true))["mean"]
    assert exact["mae"] == pytest.approx(0.0, abs=1e-12)
    assert exact["pearson_r"] == pytest.approx(1.0)


def test_auc_is_nan_for_a_single_class_trait_and_left_out_of_the_mean():
    rng = np.random.default_rng(1)
    true = rng.integers(0, 5, (40, 5))
    true[:, 2] = 2
    result = evaluate.trait_metrics(true, one_hot(true, confidence=0.9))
    assert math.isnan(result["per_trait"]["agreeableness"]["roc_auc_ovr_macro"])
    assert result["mean"]["roc_auc_ovr_macro"] == 1.0
    assert math.isnan(result["per_trait"]["agreeableness"]["pearson_r"])


def test_auc_averages_only_levels_present_in_truth():
    true = np.array([0, 0, 1, 1])[:, None].repeat(5, axis=1)
    probs = np.zeros((4, 5, 5))
    probs[:, :, 0] = np.array([0.9, 0.4, 0.6, 0.1])[:, None]  # level-0 AUC = 0.75
    probs[:, :, 1] = 1 - probs[:, :, 0]
    assert evaluate.trait_metrics(true, probs)["mean"]["roc_auc_ovr_macro"] == pytest.approx(0.75)


def test_bad_inputs_raise_one_line_perfex_errors():
    true = np.full((3, 5), 2)
    with pytest.raises(PerfexError, match="row 1"):
        evaluate.trait_metrics(np.array([[2] * 5, [-1] * 5, [2] * 5]), one_hot(true))
    with pytest.raises(PerfexError, match="probs has shape"):
        evaluate.trait_metrics(true, np.zeros((3, 25)))
    with pytest.raises(PerfexError, match="logits"):
        evaluate.trait_metrics(true, -one_hot(true))
    with pytest.raises(PerfexError, match="2 clips"):
        evaluate.trait_metrics(true, one_hot(true[:2]))
    with pytest.raises(PerfexError) as error:
        evaluate.trait_metrics(true[:0], one_hot(true[:0]))
    assert "\n" not in str(error.value)


def test_confusion_matrices_count_true_by_predicted():
    true = np.array([[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [4, 4, 4, 4, 4]])
    pred = np.array([[0, 2, 2, 3, 4], [1, 1, 2, 3, 4], [4, 4, 4, 4, 0]])
    counts = evaluate.confusion_matrices(true, pred)
    assert counts.shape == (5, 5, 5)
    assert counts[0, 0, 0] == 1 and counts[0, 0, 1] == 1 and counts[0, 4, 4] == 1
    assert counts[1, 1, 2] == 1 and counts[1, 1, 1] == 1
    assert counts[4, 4, 0] == 1 and counts[4, 4, 4] == 2
    assert counts.sum(axis=(1, 2)).tolist() == [3] * 5


def make_clipset(lengths: list[int], n_features: int, rng: np.random.Generator) -> ClipSet:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = len(lengths)
    return ClipSet(
        ids=np.arange(n),
        files=np.array([f"clip{i}.mp4" for i in range(n)], dtype=object),
        offsets=offsets,
        features=rng.uniform(0, 5, (offsets[-1], n_features)).astype(np.float32),
        times=np.zeros(offsets[-1]),
        feature_names=tuple(f"f{j}" for j in range(n_features)),
    )


def test_clip_summary_features_match_per_clip_mean_and_std():
    clips = make_clipset([3, 0, 5, 1, 0], n_features=4, rng=np.random.default_rng(2))
    summary = evaluate.clip_summary_features(clips)
    assert summary.shape == (5, 8) and summary.dtype == np.float64
    for i in range(len(clips)):
        frames = clips.clip(i).astype(np.float64)
        if len(frames) == 0:
            np.testing.assert_array_equal(summary[i], 0.0)
        else:
            np.testing.assert_allclose(summary[i, :4], frames.mean(axis=0), rtol=1e-12)
            np.testing.assert_allclose(summary[i, 4:], frames.std(axis=0), atol=1e-12)
    assert np.all(summary[3, 4:] == 0.0)


def test_clip_summary_features_of_only_empty_clips_are_zeros():
    summary = evaluate.clip_summary_features(make_clipset([0, 0], 3, np.random.default_rng(3)))
    np.testing.assert_array_equal(summary, np.zeros((2, 6)))


def planted_signal(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Features whose first column sets extroversion's level; other traits are noise around level 2."""
    features = rng.normal(size=(n, 6))
    levels = np.clip(np.rint(rng.normal(2, 0.7, (n, 5))), 0, 4).astype(np.int64)
    levels[:, 0] = np.digitize(features[:, 0], [-1.0, -0.3, 0.3, 1.0])
    return features, levels


def test_logreg_baseline_learns_a_planted_signal_that_majority_cannot():
    rng = np.random.default_rng(4)
    train_x, train_y = planted_signal(400, rng)
    test_x, test_y = planted_signal(200, rng)
    baselines = evaluate.baseline_predictions(train_y, None, train_x, test_x)
    assert set(baselines) == set(evaluate.BASELINE_NAMES)
    for probs, scores in baselines.values():
        assert probs.shape == (200, 5, 5) and scores.shape == (200, 5)
        np.testing.assert_allclose(probs.sum(axis=2), 1.0)
    logreg = evaluate.trait_metrics(test_y, baselines["logreg_au_stats"][0])["per_trait"]["extroversion"]
    majority = evaluate.trait_metrics(test_y, baselines["majority"][0])["per_trait"]["extroversion"]
    assert logreg["accuracy"] > 0.75
    assert logreg["accuracy"] > majority["accuracy"] + 0.3


def test_majority_and_mean_baselines_use_training_labels_only():
    rng = np.random.default_rng(5)
    train_y = np.full((30, 5), 1)
    train_y[:10] = 3
    test_y = np.full((20, 5), 3)  # test majority differs from train majority
    train_scores = train_y / 4 + 0.01
    baselines = evaluate.baseline_predictions(train_y, train_scores, rng.normal(size=(30, 4)), rng.normal(size=(20, 4)))
    majority_probs, majority_scores = baselines["majority"]
    np.testing.assert_array_equal(majority_probs.argmax(axis=2), 1)
    np.testing.assert_allclose(majority_scores, 0.25)
    mean_probs, mean_scores = baselines["train_mean"]
    np.testing.assert_allclose(mean_scores, (20 * 0.26 + 10 * 0.76) / 30)  # 0.4267 -> nearest level 2
    np.testing.assert_array_equal(mean_probs.argmax(axis=2), 2)
    assert evaluate.trait_metrics(test_y, majority_probs)["mean"]["accuracy"] == 0.0


def test_logreg_baseline_places_probabilities_of_missing_levels_at_zero():
    rng = np.random.default_rng(6)
    train_x = rng.normal(size=(50, 3))
    train_y = np.where(train_x[:, :1] > 0, 3, 1).repeat(5, axis=1)
    train_y[:, 4] = 2  # a trait with one training level
    probs, scores = evaluate.baseline_predictions(train_y, None, train_x, rng.normal(size=(10, 3)))["logreg_au_stats"]
    assert np.all(probs[:, :4, [0, 2, 4]] == 0.0)
    np.testing.assert_allclose(probs.sum(axis=2), 1.0)
    np.testing.assert_array_equal(probs[:, 4, 2], 1.0)
    np.testing.assert_allclose(scores, BIG_FIVE.scores(probs))


def test_baselines_reject_mismatched_or_missing_features():
    levels = np.full((4, 5), 2)
    with pytest.raises(PerfexError, match="same feature columns"):
        evaluate.baseline_predictions(levels, None, np.zeros((4, 3)), np.zeros((2, 5)))
    with pytest.raises(PerfexError, match="test_features row 1"):
        evaluate.baseline_predictions(levels, None, np.zeros((4, 3)), np.array([[0, 0, 0], [0, np.nan, 0]]))


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_clips():
    rng = np.random.default_rng(7)
    widths = []
    for n in (100, 2500):
        true = rng.integers(0, 5, (n, 5))
        pred = noisy_predictions(true, 0.5, rng)
        low, high = evaluate.bootstrap_mean_accuracy(true, pred, n_boot=500, seed=0)
        assert low <= float(np.mean(true == pred)) <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 3
    assert evaluate.bootstrap_mean_accuracy(true, pred, n_boot=200, seed=3) == evaluate.bootstrap_mean_accuracy(
        true, pred, n_boot=200, seed=3
    )


def test_group_bootstrap_resamples_whole_source_videos():
    rng = np.random.default_rng(8)
    n_videos, clips_per_video = 40, 10
    true = rng.integers(0, 5, (n_videos * clips_per_video, 5))
    video_is_easy = np.repeat(rng.random(n_videos) < 0.5, clips_per_video)  # all clips of a video right or wrong
    pred = np.where(video_is_easy[:, None], true, (true + 1) % 5)
    groups = np.repeat(np.array([f"vid{v:02d}" for v in range(n_videos)]), clips_per_video)
    clip_low, clip_high = evaluate.bootstrap_mean_accuracy(true, pred, n_boot=500)
    group_low, group_high = evaluate.bootstrap_mean_accuracy(true, pred, n_boot=500, groups=groups)
    assert group_low <= float(np.mean(true == pred)) <= group_high
    assert group_high - group_low > 2 * (clip_high - clip_low)
    singletons = evaluate.bootstrap_mean_accuracy(true, pred, n_boot=500, groups=np.arange(len(true)))
    assert singletons == pytest.approx((clip_low, clip_high))


def test_evaluate_with_baselines_and_markdown_report():
    rng = np.random.default_rng(9)
    train_x, train_y = planted_signal(300, rng)
    test_x, test_y = planted_signal(120, rng)
    probs = one_hot(noisy_predictions(test_y, 0.7, rng), confidence=0.8)
    groups = np.arange(120) // 3
    results = evaluate.evaluate_with_baselines(
        test_y, probs, None, train_y, None, train_x, test_x, groups=groups, n_boot=200
    )
    assert results["n_test_clips"] == 120
    assert set(results["baselines"]) == {"majority", "train_mean", "logreg_au_stats", "ridge_au_stats"}
    low, high = results["model"]["accuracy_ci95"]
    assert low <= results["model"]["mean"]["accuracy"] <= high
    assert results["bootstrap"] == {"n_boot": 200, "unit": "source video", "n_units": 40}
    json.dumps(results)
    markdown = report.results_markdown(results, "cnn")
    table_rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    for name in ("**cnn**", "majority", "train_mean", "logreg_au_stats"):
        assert any(row.startswith(f"| {name}") for row in table_rows), name
    for trait in TRAITS:
        assert any(row.startswith(f"| {trait} |") for row in table_rows), trait
    assert f"95% CI [{low:.3f}, {high:.3f}]" in markdown
    assert "40 source videos" in markdown


def assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_confusion_plots_are_written_as_png(tmp_path):
    rng = np.random.default_rng(10)
    true = rng.integers(0, 5, (80, 5))
    pred = noisy_predictions(true, 0.6, rng)
    out = plot_confusion_matrices(true, pred, tmp_path / "figs" / "confusion.png", title="test")
    assert out == tmp_path / "figs" / "confusion.png"
    assert_png(out)
    paths = plot_confusion_matrix_per_trait(true, pred, tmp_path / "per_trait", prefix="cnn_")
    assert [p.name for p in paths] == [f"cnn_confusion_{trait}.png" for trait in TRAITS]
    for path in paths:
        assert_png(path)


def test_training_curves_from_records_or_frame(tmp_path):
    history = [
        {"epoch": e, "train_loss": 2 / e, "val_loss": 2 / e + 0.01 * e, "val_accuracy": 0.5 + 0.01 * e,
         "val_f1_macro": 0.3 + 0.01 * e, "lr": 1e-4}
        for e in range(1, 6)
    ]
    assert_png(plot_training_curves(history, tmp_path / "curves.png"))
    assert_png(plot_training_curves(pd.DataFrame(history).drop(columns=["val_loss"]), tmp_path / "frame.png"))
    with pytest.raises(PerfexError, match="train_loss"):
        plot_training_curves([{"epoch": 1, "loss": 1.0}], tmp_path / "bad.png")


def test_importing_metrics_does_not_import_matplotlib():
    code = "import sys, perfex.core.metrics; print('matplotlib' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert output.stdout.strip() == "False"


def test_trivial_baselines_on_real_first_impressions_labels():
    path = REAL / "fi_annotation_validation.pkl"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with open(path, "rb") as handle:
        annotations = pickle.load(handle, encoding="latin1")
    names = sorted(annotations["openness"])
    alias = {"extroversion": "extraversion"}
    scores = np.array([[float(annotations[alias.get(t, t)][name]) for t in TRAITS] for name in names])
    levels = np.rint(scores * 4).astype(np.int64)
    train, test = slice(0, 1000), slice(1000, None)
    features = np.zeros((len(names), 1))
    baselines = evaluate.baseline_predictions(levels[train], scores[train], features[train], features[test])
    majority = evaluate.trait_metrics(levels[test], baselines["majority"][0])["mean"]
    mean_probs, mean_scores = baselines["train_mean"]
    train_mean = evaluate.trait_metrics(levels[test], mean_probs, scores[test], mean_scores)["mean"]
    assert 0.5 < majority["accuracy"] < 0.65  # First Impressions: level 2 holds 55-59% of clips
    assert 0.86 < train_mean["one_minus_mae"] < 0.90  # First Impressions: 0.875-0.894 per trait on the test split


def test_ordinal_and_agreement_metrics_match_their_definitions():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 5, 300)
    y_pred = np.clip(y_true + rng.integers(-2, 3, 300), 0, 4)
    assert evaluate.quadratic_weighted_kappa(y_true, y_pred) == pytest.approx(cohen_kappa_score(y_true, y_pred, weights="quadratic"))
    assert evaluate.quadratic_weighted_kappa(y_true, y_true) == pytest.approx(1.0)
    x = rng.random(200)
    assert evaluate.concordance_correlation(x, x) == pytest.approx(1.0)
    assert evaluate.concordance_correlation(x, x + 0.5) < 0.8 < evaluate._pearson_r(x, x + 0.5)
    probs = np.eye(5)[np.stack([y_pred] * 5, axis=1)]
    metrics = evaluate.trait_metrics(np.stack([y_true] * 5, axis=1), probs)["mean"]
    assert metrics["off_by_one_accuracy"] == pytest.approx(np.mean(np.abs(y_true - y_pred) <= 1))
    assert metrics["mae_levels"] == pytest.approx(np.mean(np.abs(y_true - y_pred)))
