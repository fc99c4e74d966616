"""Temperature scaling and calibration metrics."""

import numpy as np
import pytest
import torch

from perfex.train.calibration import (apply_temperatures, brier_score, calibration_report, expected_calibration_error,
                                fit_temperatures, ranked_probability_score, reliability_diagram)
from perfex.core.errors import PerfexError

pytestmark = pytest.mark.unit


def overconfident(n: int, seed: int, sharpen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated logits (levels drawn from their softmax) multiplied per trait by ``sharpen``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.0, (n, 5, 5))
    probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
    levels = np.array([[rng.choice(5, p=p) for p in clip] for clip in probs])
    return (logits * sharpen[None, :, None]).reshape(n, 25), levels


def test_temperatures_undo_overconfidence_and_lower_nll():
    sharpen = np.array([4.0, 2.0, 1.0, 3.0, 5.0])
    logits, levels = overconfident(2000, 0, sharpen)
    temperatures = fit_temperatures(logits, levels)
    np.testing.assert_allclose(temperatures, sharpen, rtol=0.2)
    test_logits, test_levels = overconfident(1000, 1, sharpen)
    before = torch.tensor(test_logits).view(-1, 5, 5).softmax(-1).numpy()
    after = apply_temperatures(torch.tensor(test_logits), temperatures).view(-1, 5, 5).softmax(-1).numpy()
    report_before, report_after = calibration_report(before, test_levels), calibration_report(after, test_levels)
    for key in ("nll", "ece", "brier", "rps"):
        assert report_after[key] < report_before[key], key


def test_ordinal_temperatures_and_bad_shapes():
    logits, levels = overconfident(300, 2, np.full(5, 3.0))
    assert fit_temperatures(logits, levels, loss="ordinal").shape == (5,)
    with pytest.raises(PerfexError, match="temperature fit needs"):
        fit_temperatures(logits[:, :20], levels)


def test_metrics_on_known_cases(tmp_path):
    levels = np.array([[0, 4, 2, 2, 1]])
    perfect = np.eye(5)[levels]
    assert brier_score(perfect, levels) == 0 and ranked_probability_score(perfect, levels) == 0
    assert expected_calibration_error(perfect, levels) == 0
    uniform = np.full((1, 5, 5), 0.2)
    assert brier_score(uniform, levels) == pytest.approx(0.8)
    far = np.eye(5)[np.array([[4, 0, 2, 2, 1]])]
    assert ranked_probability_score(far, levels) == pytest.approx(2 * 4 / 4 / 5)
    assert reliability_diagram({"a": uniform}, levels, tmp_path / "r.png").stat().st_size > 0
