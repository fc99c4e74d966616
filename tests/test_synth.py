"""The generator: exact formats, determinism, the First Impressions label distribution, the planted links."""

import gzip

import numpy as np
import pandas as pd
import pytest

from perfex.core.schema import AU_INTENSITY_COLUMNS, AU_PRESENCE_COLUMNS, CONTEXT_COLUMNS, EMOTION_COLUMNS, TRAITS
from perfex.data.synth import (TRAIT_MEANS, clip_aus, generate_clips, generate_openface_dir, generate_perfex, openface_header, sample_traits,
                          write_table)

pytestmark = pytest.mark.unit

PERFEX_COLUMNS = ["ID", "File", *AU_INTENSITY_COLUMNS, *AU_PRESENCE_COLUMNS, *CONTEXT_COLUMNS, *EMOTION_COLUMNS, *TRAITS]


def test_perfex_table_has_the_published_columns_and_grid_labels():
    frame = generate_perfex(12, seed=0, min_frames=50, max_frames=80)
    assert list(frame.columns) == PERFEX_COLUMNS
    per_clip = frame.groupby("ID")[list(TRAITS)].nunique()
    assert (per_clip == 1).all().all()
    assert set(np.unique(frame[list(TRAITS)].to_numpy())) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert frame["File"].str.fullmatch(r"[A-Za-z0-9_-]{11}\.\d{3}\.mp4").all()
    au = frame[list(AU_INTENSITY_COLUMNS)].to_numpy()
    assert au.min() >= 0 and au.max() <= 5


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    for name in ("a.csv.gz", "b.csv.gz"):
        write_table(generate_perfex(5, seed=7, min_frames=40, max_frames=60), tmp_path / name)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    other = generate_perfex(5, seed=8, min_frames=40, max_frames=60)
    assert not other.equals(generate_perfex(5, seed=7, min_frames=40, max_frames=60))


def test_unlabelled_mode_leaves_trait_columns_empty():
    frame = generate_perfex(3, seed=0, labeled=False, min_frames=40, max_frames=50)
    assert frame[list(TRAITS)].isna().all().all()


def test_default_traits_follow_first_impressions_statistics():
    traits = sample_traits(20000, np.random.default_rng(0))
    np.testing.assert_allclose(traits.mean(axis=0), TRAIT_MEANS, atol=0.03)
    correlations = np.corrcoef(traits.T)[np.triu_indices(5, 1)]
    assert correlations.min() > 0.4
    level2 = (np.floor(traits * 4 + 0.5) == 2).mean(axis=0)
    assert np.all((level2 > 0.5) & (level2 < 0.65))
    wide = sample_traits(20000, np.random.default_rng(0), spread=2.5)
    assert (np.floor(wide * 4 + 0.5) == 2).mean() < 0.4


def test_openface_directory_matches_the_real_header_and_has_failed_frames(tmp_path):
    paths = generate_openface_dir(tmp_path / "of", 3, seed=1, min_frames=300, max_frames=320, labels_path=tmp_path / "labels.csv")
    with gzip.open(paths[0], "rt") as handle:
        header = handle.readline().rstrip("\n")
    assert header == ", ".join(openface_header()) and len(openface_header()) == 334
    frame = pd.read_csv(paths[0], skipinitialspace=True)
    np.testing.assert_allclose(np.diff(frame["timestamp"]), 1 / 30, atol=1e-3)
    failed = frame[frame["success"] == 0]
    assert len(failed) > 0 and (failed[list(AU_INTENSITY_COLUMNS)] == 0).all().all()
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["File", *TRAITS] and len(labels) == 3


def person():
    return {"baseline": np.full(17, 0.1), "gain": 1.0}


def blink_interval_cv(traits, seed):
    aus = clip_aus(traits, person(), 9000, np.random.default_rng(seed))
    blink = aus[:, AU_INTENSITY_COLUMNS.index("AU45_r")]
    onsets = np.flatnonzero((blink[1:] > 1.0) & (blink[:-1] <= 1.0))
    gaps = np.diff(onsets)
    return gaps.std() / gaps.mean(), len(onsets)


def test_planted_links_extroversion_smiles_and_conscientiousness_blink_regularity():
    low, high = TRAIT_MEANS - 0.35, TRAIT_MEANS + 0.35
    au12 = AU_INTENSITY_COLUMNS.index("AU12_r")
    smiles = [clip_aus(np.r_[t, TRAIT_MEANS[1:]], person(), 3000, np.random.default_rng(1))[:, au12].mean()
              for t in (low[0], high[0])]
    assert smiles[1] > smiles[0] + 0.2
    regular, n_regular = blink_interval_cv(np.r_[TRAIT_MEANS[:3], high[3], TRAIT_MEANS[4]], seed=2)
    bursty, n_bursty = blink_interval_cv(np.r_[TRAIT_MEANS[:3], low[3], TRAIT_MEANS[4]], seed=2)
    assert regular < 0.6 * bursty
    assert abs(n_regular - n_bursty) < 0.35 * n_bursty  # same blink rate: only the timing differs


def lagged_correlation(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """Correlation of ``a`` at frame t with ``b`` at frame t + lag."""
    x, y = (a[:-lag], b[lag:]) if lag > 0 else (a[-lag:], b[:lag or None])
    return float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0


def timing_features(aus: np.ndarray) -> np.ndarray:
    """One hand-made timing statistic per planted trait of the timing-only variant (TRAITS order)."""
    col = {name: aus[:, i] for i, name in enumerate(AU_INTENSITY_COLUMNS)}
    blink = col["AU45_r"]
    onsets = np.flatnonzero((blink[1:] > 1.0) & (blink[:-1] <= 1.0))
    gaps = np.diff(onsets)
    cv = gaps.std() / gaps.mean() if len(gaps) > 2 else 1.0
    return np.array([
        lagged_correlation(col["AU12_r"], col["AU26_r"], 60),
        lagged_correlation(col["AU04_r"], col["AU15_r"], 15) - lagged_correlation(col["AU04_r"], col["AU15_r"], -15),
        lagged_correlation(col["AU12_r"], col["AU06_r"], 1),
        -cv,
        lagged_correlation(col["AU01_r"], col["AU10_r"], 18),
    ])


def held_out_r(features: np.ndarray, target: np.ndarray, n_train: int) -> float:
    from sklearn.linear_model import Ridge

    model = Ridge(alpha=1.0).fit(features[:n_train], target[:n_train])
    return float(np.corrcoef(model.predict(features[n_train:]), target[n_train:])[0, 1])


def test_timing_variant_hides_traits_from_clip_means_and_stds_but_not_from_timing():
    _, scores, aus = generate_clips(1500, seed=3, spread=2.0, min_frames=300, max_frames=460, variant="timing")
    summary = np.array([np.r_[a.mean(axis=0), a.std(axis=0)] for a in aus])
    timing = np.array([timing_features(a) for a in aus])
    for t, trait in enumerate(TRAITS):
        blind = held_out_r(summary, scores[:, t], 1000)
        seen = held_out_r(timing[:, [t]], scores[:, t], 1000)
        assert abs(blind) < 0.15, (trait, blind)
        assert seen > 0.3, (trait, seen)


def test_documented_variant_is_the_default_and_unknown_variants_are_refused():
    import pytest

    from perfex.core.errors import PerfexError

    _, _, default = generate_clips(2, seed=1, min_frames=40, max_frames=50)
    _, _, documented = generate_clips(2, seed=1, min_frames=40, max_frames=50, variant="documented")
    assert all(np.array_equal(a, b) for a, b in zip(default, documented))
    with pytest.raises(PerfexError, match="unknown generator variant 'time'; choose one of documented, timing"):
        generate_clips(2, seed=1, variant="time")


def test_mixed_roles_give_one_unlinked_trait_and_both_kinds_of_link_for_every_seed():
    from perfex.data.synth import MIXED_STRENGTHS, mixed_roles

    assignments = set()
    for seed in range(300):
        roles = mixed_roles(seed)
        assert list(roles) == list(TRAITS) and roles == mixed_roles(seed)
        kinds = [role for role, _ in roles.values()]
        assert kinds.count("none") == 1 and kinds.count("timing") >= 1 and kinds.count("statistics") >= 1, (seed, roles)
        for role, strength in roles.values():
            assert strength == 0.0 if role == "none" else MIXED_STRENGTHS[0] <= strength <= MIXED_STRENGTHS[1]
        assignments.add(tuple(kinds))
    assert len(assignments) >= 50  # of the 70 possible role assignments
    assert len({tuple(mixed_roles(seed).values()) for seed in range(20)}) == 20


def mixed_timing_features(aus: np.ndarray) -> np.ndarray:
    """One hand-made statistic per timing link of the mixed variant (TRAITS order): talk rhythm (AU26 spectral centroid),
    AU04->AU15 short-minus-long lag, blink regularity (-CV of intervals), AU14 slope skew, AU01-AU05 co-occurrence."""
    col = {name: aus[:, i] for i, name in enumerate(AU_INTENSITY_COLUMNS)}
    talk = col["AU26_r"] - col["AU26_r"].mean()
    power = np.abs(np.fft.rfft(talk * np.hanning(len(talk)))) ** 2
    hz = np.fft.rfftfreq(len(talk), 1 / 30)
    band = (hz > 2.5) & (hz < 8)
    blink = col["AU45_r"]
    gaps = np.diff(np.flatnonzero((blink[1:] > 1.0) & (blink[:-1] <= 1.0)))
    slope = np.diff(np.convolve(col["AU14_r"], np.ones(5) / 5, mode="valid"))  # smoothed: tracker noise hides the skew
    return np.array([
        (power[band] * hz[band]).sum() / power[band].sum(),
        lagged_correlation(col["AU04_r"], col["AU15_r"], 9) - lagged_correlation(col["AU04_r"], col["AU15_r"], 42),
        -(gaps.std() / gaps.mean()) if len(gaps) >= 2 else -0.5,
        np.mean(slope**3) / (np.mean(slope**2) ** 1.5 + 1e-9),
        lagged_correlation(col["AU01_r"], col["AU05_r"], 1),
    ])


def clip_summaries(aus: list[np.ndarray]) -> np.ndarray:
    return np.array([np.r_[a.mean(axis=0), a.std(axis=0)] for a in aus])


def test_mixed_variant_shows_statistics_traits_in_clip_means_and_stds_and_hides_the_others():
    from perfex.data.synth import mixed_roles

    roles = mixed_roles(0)
    assert [role for role, _ in roles.values()] == ["none", "statistics", "statistics", "timing", "timing"]
    _, scores, aus = generate_clips(1500, seed=0, spread=2.0, min_frames=300, max_frames=460, variant="mixed")
    # traits independent (First Impressions' correlations are 0.57-0.79): a trait cannot show through another's link
    assert np.abs(np.corrcoef(scores.T)[np.triu_indices(5, 1)]).max() < 0.2
    summary, timing = clip_summaries(aus), np.array([mixed_timing_features(a) for a in aus])
    for t, (trait, (role, _)) in enumerate(roles.items()):
        seen_by_statistics = held_out_r(summary, scores[:, t], 1000)
        if role == "statistics":
            assert seen_by_statistics > 0.4, (trait, seen_by_statistics)
        else:
            assert abs(seen_by_statistics) < 0.15, (trait, role, seen_by_statistics)
        if role == "timing":
            assert held_out_r(timing[:, [t]], scores[:, t], 1000) > 0.3, trait


def test_every_mixed_slot_links_its_trait_through_timing_alone_or_through_statistics():
    from perfex.data.synth import AU_BASELINE, clip_aus_mixed

    rng = np.random.default_rng(5)
    traits = sample_traits(1500, rng, 2.0, np.eye(5))

    def clips(role: str, n: int) -> list[np.ndarray]:
        roles = {trait: (role, 1.0) for trait in TRAITS}
        return [clip_aus_mixed(traits[i], {"baseline": AU_BASELINE, "gain": rng.lognormal(0, 0.15)}, int(rng.integers(300, 461)),
                               rng, roles) for i in range(n)]

    timed = clips("timing", 1500)
    summary, timing = clip_summaries(timed), np.array([mixed_timing_features(a) for a in timed])
    statistics = clip_summaries(clips("statistics", 600))
    for t, trait in enumerate(TRAITS):
        assert abs(held_out_r(summary, traits[:, t], 1000)) < 0.15, trait
        assert held_out_r(timing[:, [t]], traits[:, t], 1000) > 0.3, trait
        assert held_out_r(statistics, traits[:600, t], 400) > 0.4, trait


def test_mixed_variant_takes_its_roles_from_the_roles_seed():
    from perfex.data.synth import mixed_roles

    assert mixed_roles(5) != mixed_roles(6)
    _, _, own = generate_clips(3, seed=5, min_frames=300, max_frames=320, variant="mixed")
    _, _, same = generate_clips(3, seed=5, min_frames=300, max_frames=320, variant="mixed", roles_seed=5)
    _, _, other = generate_clips(3, seed=5, min_frames=300, max_frames=320, variant="mixed", roles_seed=6)
    assert all(np.array_equal(a, b) for a, b in zip(own, same))
    assert not all(np.array_equal(a, b) for a, b in zip(own, other))
    frame = generate_perfex(3, seed=1005, min_frames=300, max_frames=320, variant="mixed", roles_seed=5)
    assert frame["ID"].nunique() == 3
