"""The quality benchmark's own pieces: averaging over training seeds, the planted-statistics reference, seed options."""

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from perfex.core.clips import ClipSet
from perfex.core.errors import PerfexError
from perfex.core.schema import AU_INTENSITY_COLUMNS

pytestmark = pytest.mark.unit

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


def _clip_set(clips: list[np.ndarray], levels: np.ndarray) -> ClipSet:
    offsets = np.r_[0, np.cumsum([len(c) for c in clips])]
    names = np.array([f"v{i:05d}.000.mp4" for i in range(len(clips))])
    return ClipSet(ids=np.arange(len(clips)).astype(str), files=names, offsets=offsets, features=np.vstack(clips).astype(np.float32),
                   times=np.zeros(offsets[-1]), levels=levels, scores=levels / 4)


def _rhythm_sets(n_train: int, n_val: int, n_test: int, seed: int = 0) -> dict:
    """Clips of 60-100 frames whose extroversion (levels 1 or 3) sets the AU12 rhythm (3 or 6 Hz, same mean and std);
    the other traits take random levels 0-4 with no signal."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    levels = np.c_[rng.choice([1, 3], n), rng.integers(0, 5, (n, 4))]
    clips = []
    for level in levels[:, 0]:
        frames = int(rng.integers(60, 101))
        x = rng.normal(0.2, 0.05, (frames, len(AU)))
        x[:, AU["AU12_r"]] += 1 + np.sin(2 * np.pi * (1.5 * level) * np.arange(frames) / 30 + rng.uniform(0, 6.3))
        clips.append(x)
    parts = {"train": range(n_train), "val": range(n_train, n_train + n_val), "test": range(n_train + n_val, n)}
    return {part: _clip_set([clips[i] for i in index], levels[list(index)]) for part, index in parts.items()}


def test_fixed_length_crops_long_clips_and_wraps_short_ones(quality):
    clips = [np.arange(6 * 17).reshape(6, 17), np.arange(3 * 17).reshape(3, 17)]
    arrays = quality.fixed_length(_clip_set(clips, np.zeros((2, 5), int)), 4)
    assert arrays.shape == (2, 17, 4) and arrays.dtype == np.float32
    np.testing.assert_array_equal(arrays[0], clips[0][:4].T)
    np.testing.assert_array_equal(arrays[1], clips[1][[0, 1, 2, 0]].T)


def test_time_series_peers_give_level_probabilities_and_learn_a_planted_rhythm(quality):
    pytest.importorskip("aeon")
    from aeon.transformations.collection.convolution_based import MiniRocket

    sets = _rhythm_sets(20, 10, 12)
    for system in ("minirocket", "multirocket_hydra"):
        probs = quality.PEERS[system](sets, 0)
        assert probs.shape == (12, 5, 5) and np.allclose(probs.sum(axis=-1), 1) and (probs >= 0).all(), system
    sets = _rhythm_sets(120, 40, 80, seed=1)
    probs = quality.peer_probabilities([MiniRocket(n_kernels=84, n_jobs=1, random_state=0)], sets)
    scores = quality.per_trait_scores(sets["test"].levels, [probs])
    assert probs[:, 0, [0, 2, 4]].max() == 0  # only the trained levels get probability (a binary ridge classifier)
    assert scores["extroversion"]["accuracy"] > 0.9 and scores["extroversion"]["pearson_r"] > 0.8, scores["extroversion"]
    assert max(abs(scores[t]["pearson_r"]) for t in ("neuroticism", "agreeableness")) < 0.4


def _results(per_trait: dict[str, list[tuple[float, float]]], networks: tuple[str, ...]) -> dict:
    """Bench-shaped results: ``per_trait[system]`` lists (accuracy, r) in TRAITS order."""
    from perfex.core.schema import TRAITS

    results = {}
    for system, values in per_trait.items():
        traits = {t: {"accuracy": a, "pearson_r": r, "qwk": r / 2} for t, (a, r) in zip(TRAITS, values)}
        metrics = {m: [0.5, 0.4, 0.6] for m in ("accuracy", "f1_macro", "qwk", "off_by_one", "mae_levels", "one_minus_mae", "ccc")}
        results[system] = {"per_trait": traits, "metrics": metrics, "seconds": 1.0,
                           **({"training_seeds": [0]} if system in networks else {})}
    return results


def test_trait_checks_hold_timing_traits_to_the_better_peer_and_the_others_to_logreg(quality, capsys):
    from perfex.data.synth import mixed_roles

    roles = mixed_roles(0)  # extroversion none, neuroticism and agreeableness statistics, the other two timing
    results = _results({
        "logreg": [(0.60, 0.0), (0.62, 0.5), (0.64, 0.3), (0.55, 0.0), (0.58, 0.0)],
        "minirocket": [(0.52, 0.0), (0.53, 0.5), (0.60, 0.2), (0.51, 0.40), (0.57, 0.10)],
        "multirocket_hydra": [(0.54, 0.0), (0.54, 0.5), (0.61, 0.2), (0.53, 0.35), (0.57, 0.20)],
        "cnn": [(0.595, 0.0), (0.60, 0.5), (0.64, 0.3), (0.56, 0.41), (0.58, 0.26)],
        "attn": [(0.60, 0.0), (0.62, 0.5), (0.64, 0.3), (0.56, 0.39), (0.58, 0.24)],
    }, networks=("cnn", "attn"))
    checks = quality.trait_checks(results, roles)
    assert checks["conscientiousness"]["target"] == 0.40 and checks["conscientiousness"]["reference"] == "minirocket"
    assert checks["openness"]["target"] == quality.TIMING_R_FLOOR and checks["openness"]["reference"] == "floor 0.25"
    assert checks["neuroticism"]["target"] == pytest.approx(0.61) and checks["neuroticism"]["metric"] == "accuracy"
    met = {trait: {name: v["met"] for name, v in check["networks"].items()} for trait, check in checks.items()}
    assert met == {"extroversion": {"cnn": True, "attn": True}, "neuroticism": {"cnn": False, "attn": True},
                   "agreeableness": {"cnn": True, "attn": True}, "conscientiousness": {"cnn": True, "attn": False},
                   "openness": {"cnn": True, "attn": False}}
    quality.print_table("mixed", 1000, results, roles, checks)
    out = capsys.readouterr().out
    assert "extroversion [none]" in out and "conscientiousness [timing x1.46]" in out and "neuroticism [statistics x1.13]" in out
    assert "every target met by: no network; missing some: cnn, attn" in out
    assert "neuroticism [statistics x1.13]: accuracy >= 0.610 (logreg); cnn 0.600 NO, attn 0.620 yes" in out


def test_trait_checks_without_peers_logreg_or_networks_say_so(quality):
    roles = quality.trait_roles("timing", 0)
    assert set(roles.values()) == {("timing", 1.0)} and quality.trait_roles("documented", 0) is None
    checks = quality.trait_checks(_results({"majority": [(0.6, 0.0)] * 5}, networks=()), quality.trait_roles("mixed", 0))
    lines = quality.check_lines(checks)
    assert "  openness [timing x1.37]: r >= 0.250 (floor 0.25; no peer in this table); no networks in this table" in lines
    assert "  extroversion [none]: no target (logreg not run); no verdict without logreg" in lines


def test_unknown_kind_is_a_one_line_error_naming_the_valid_ones(quality, tmp_path, capsys):
    assert quality.main(["--kinds", "timing,mixd", "--cache", str(tmp_path), "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert err == "error: unknown data kind 'mixd'; --kinds takes a comma-separated list of documented, timing, mixed\n"
    assert not list(tmp_path.iterdir())  # refused before generating anything


def test_cached_mixed_data_is_named_by_kind_and_roles_seed(quality, tmp_path):
    pool = quality.cached_table(tmp_path, "mixed", 3, 0, 1.0, 0, roles_seed=0)
    test = quality.cached_table(tmp_path, "mixed", 3, 1000, 1.0, 10_000_000, roles_seed=0)
    timing = quality.cached_table(tmp_path, "timing", 3, 0, 1.0, 0, roles_seed=0)
    assert [p.name for p in (pool, test, timing)] == ["mixed-roles0_spread1_seed0_n3.csv.gz", "mixed-roles0_spread1_seed1000_n3.csv.gz",
                                                     "timing_spread1_seed0_n3.csv.gz"]


def test_peers_are_skipped_with_a_note_when_aeon_is_missing(quality, monkeypatch, capsys):
    sets = _rhythm_sets(30, 10, 20)
    sets["test_groups"] = np.arange(20)
    monkeypatch.setattr(quality, "load_sets", lambda kind, size, args: sets)
    monkeypatch.setattr(quality, "aeon_available", lambda: False)
    args = argparse.Namespace(systems="majority,minirocket", seed=0, train_seeds=None, bootstrap=5)
    results = quality.run_size("mixed", 30, args, {})
    assert list(results) == ["majority"]
    assert "minirocket: skipped, aeon is not installed" in capsys.readouterr().out


def test_the_perfex_package_never_imports_aeon():
    sources = {path: path.read_text() for path in (REPO / "perfex").rglob("*.py")}
    assert sources and not [path for path, text in sources.items() if "import aeon" in text or "from aeon" in text]
