"""The quality benchmark's own pieces: averaging over training seeds, the planted-statistics reference, seed options."""

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from perfex.clips import ClipSet
from perfex.errors import PerfexError
from perfex.schema import AU_INTENSITY_COLUMNS

REPO = Path(__file__).resolve().parents[1]
AU = {name: i for i, name in enumerate(AU_INTENSITY_COLUMNS)}


@pytest.fixture(scope="module")
def quality():
    sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("perfex_quality_bench", REPO / "bench" / "quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _probabilities(levels: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """[N, 5, 5] probabilities peaked on ``levels``, with ``noise`` of them moved to a random level."""
    probs = np.full((*levels.shape, 5), 0.05)
    noisy = np.where(rng.random(levels.shape) < noise, rng.integers(0, 5, levels.shape), levels)
    np.put_along_axis(probs, noisy[..., None], 0.8, axis=-1)
    return probs


def test_seed_averaged_table_is_the_mean_of_the_runs(quality):
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 5, (60, 5))
    groups = np.repeat(np.arange(20), 3)
    good, poor = _probabilities(levels, rng, 0.1), _probabilities(levels, rng, 0.6)
    one = quality.bootstrap_table(levels, [good], groups, 50, 0)
    assert quality.bootstrap_table(levels, [good, good], groups, 50, 0) == one
    both = quality.bootstrap_table(levels, [good, poor], groups, 50, 0)
    single = [quality.metric_values(levels, p, np.ones(len(levels))) for p in (good, poor)]
    for metric in quality.METRICS:
        assert both[metric][0] == pytest.approx((single[0][metric] + single[1][metric]) / 2)
        assert both[metric][1] <= both[metric][0] <= both[metric][2]
    assert single[1]["accuracy"] < both["accuracy"][0] < single[0]["accuracy"]


def test_training_seeds_come_from_one_place(quality):
    args = argparse.Namespace(seed=0, train_seeds=None)
    assert quality.training_seeds(args, {}) == [0]
    assert quality.training_seeds(args, {"seed": 3}) == [3]
    args.train_seeds = "0,1,2"
    assert quality.training_seeds(args, {"loss": "ce"}) == [0, 1, 2]
    assert quality.seed_options({"loss": "ce"}, 0, 0) == {"loss": "ce"}
    assert quality.seed_options({"loss": "ce"}, 2, 0) == {"loss": "ce", "seed": 2}
    with pytest.raises(PerfexError, match="not both"):
        quality.training_seeds(args, {"seed": 1})
    for bad, message in (("0,x", "integers"), ("1,1", "repeats")):
        args.train_seeds = bad
        with pytest.raises(PerfexError, match=message):
            quality.training_seeds(args, {})


def _clip(n_frames: int, events: dict[str, np.ndarray]) -> np.ndarray:
    """[T, 17] AU intensities: 0.1 everywhere, 2.0 for 6 frames from each listed onset."""
    x = np.full((n_frames, len(AU_INTENSITY_COLUMNS)), 0.1)
    for name, onsets in events.items():
        for onset in onsets:
            x[onset : onset + 6, AU[name]] = 2.0
    return x


def test_planted_statistics_read_co_occurrence_regularity_and_order(quality):
    n = 450
    smiles = np.arange(20, 430, 60)
    regular, bursty = np.arange(10, 440, 40), np.array([10, 25, 40, 200, 215, 230, 390, 405, 420])
    clips = [_clip(n, {"AU12_r": smiles, "AU06_r": smiles, "AU45_r": regular, "AU01_r": smiles, "AU10_r": smiles + 18}),
             _clip(n, {"AU12_r": smiles, "AU06_r": smiles + 30, "AU45_r": bursty, "AU01_r": smiles + 18, "AU10_r": smiles})]
    clip_set = ClipSet(ids=np.array(["a", "b"]), files=np.array(["a", "b"]), offsets=np.array([0, n, 2 * n]),
                       features=np.vstack(clips).astype(np.float32), times=np.zeros(2 * n))
    stats = quality.planted_statistics(clip_set)
    assert stats.shape == (2, 6) and np.isfinite(stats).all()
    co_occurrence, interval_cv, _, flash_then_raise = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    assert co_occurrence[0] > 0.9 > 0 > co_occurrence[1]
    assert interval_cv[0] < 0.05 < 1 < interval_cv[1]
    assert flash_then_raise[0] > 0 > flash_then_raise[1]
    no_aus = ClipSet(ids=np.array(["a"]), files=np.array(["a"]), offsets=np.array([0, 3]), features=np.zeros((3, 2), np.float32),
                     times=np.zeros(3), feature_names=("x", "y"))
    with pytest.raises(PerfexError, match="AU intensity columns"):
        quality.planted_statistics(no_aus)
