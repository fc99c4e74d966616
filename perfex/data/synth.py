"""Synthetic PerFeX and OpenFace data with documented, planted links between traits and AU events.

The links live in the timing and co-occurrence of facial events (smiles, brow flashes, frowns, blinks) as well
as in baselines, so a temporal model has something a per-clip mean/std summary cannot fully see. See
data/README.md for the table of links. Everything is deterministic per seed. Synthetic data says nothing about
real people.

    python -m perfex.data.synth perfex --clips 400 --seed 1 --spread 2.5 --out data/train.csv.gz
    python -m perfex.data.synth openface --clips 6 --seed 4 --out data/openface_deploy --labels-out data/openface_labels.csv
"""

from __future__ import annotations

import argparse
import string
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from ..core.errors import PerfexError
from ..core.schema import AU_INTENSITY_COLUMNS, AU_PRESENCE_COLUMNS, CONTEXT_COLUMNS, EMOTION_COLUMNS, FPS, TRAITS
from ..core.tables import write_table as write_arrow_table

# ChaLearn First Impressions V2 label statistics (published means and inter-trait correlations), in TRAITS order.
TRAIT_MEANS = np.array([0.48, 0.52, 0.55, 0.52, 0.57])
TRAIT_SDS = np.array([0.150, 0.155, 0.130, 0.150, 0.140])
TRAIT_CORRELATIONS = np.array([
    [1.00, 0.62, 0.60, 0.57, 0.79],
    [0.62, 1.00, 0.72, 0.69, 0.63],
    [0.60, 0.72, 1.00, 0.64, 0.65],
    [0.57, 0.69, 0.64, 1.00, 0.60],
    [0.79, 0.63, 0.65, 0.60, 1.00],
])
AU = {name: i for i, name in enumerate(AU_INTENSITY_COLUMNS)}
# Resting intensity of each AU on a talking face (OpenFace scale 0..5).
AU_BASELINE = np.array([0.15, 0.10, 0.20, 0.10, 0.15, 0.30, 0.05, 0.15, 0.20, 0.20, 0.10, 0.30, 0.10, 0.10, 0.60, 0.35, 0.20])
WORDS = ("i", "you", "really", "think", "so", "well", "yeah", "like", "and", "the")
_ID_ALPHABET = np.array(list(string.ascii_letters + string.digits + "-_"))


def sample_traits(n_people: int, rng: np.random.Generator, spread: float = 1.0,
                  correlations: np.ndarray = TRAIT_CORRELATIONS) -> np.ndarray:
    """Trait scores [n, 5] in [0, 1] following the First Impressions means and spreads (and, by default, correlations)."""
    covariance = correlations * np.outer(TRAIT_SDS, TRAIT_SDS)
    draws = rng.multivariate_normal(np.zeros(len(TRAITS)), covariance, size=n_people, method="cholesky")
    return np.clip(TRAIT_MEANS + spread * draws, 0.0, 1.0)


def _bump(duration: int) -> np.ndarray:
    """A raised-cosine pulse of ``duration`` frames peaking at 1."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(duration) + 0.5) / duration)


def _onsets(rng: np.random.Generator, n_frames: int, per_minute: float, regularity: float = 1.0) -> np.ndarray:
    """Event start frames: a renewal process with the given mean rate; gamma shape ``regularity`` (1 = Poisson)."""
    mean_gap = 60.0 * FPS / max(per_minute, 1e-3)
    count = int(n_frames / mean_gap * 2 + 10)
    gaps = rng.gamma(regularity, mean_gap / regularity, size=count)
    times = rng.uniform(0, mean_gap) + np.cumsum(gaps) - gaps[0]
    return times[times < n_frames].astype(np.int64)


def _impulses(n_frames: int, onsets: np.ndarray, amplitudes: np.ndarray | float) -> np.ndarray:
    train = np.zeros(n_frames)
    np.add.at(train, onsets, amplitudes)
    return train


def _events(n_frames: int, onsets: np.ndarray, amplitudes: np.ndarray | float, duration: int) -> np.ndarray:
    """Sum of raised-cosine events starting at ``onsets``."""
    return np.convolve(_impulses(n_frames, onsets, amplitudes), _bump(duration))[:n_frames]


def clip_aus(traits: np.ndarray, person: dict, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """AU intensities [n_frames, 17] of one clip of a person with these continuous trait scores.

    Long on purpose: it reads top to bottom as the list of planted links that data/README.md documents, one
    block per link, in the same order; splitting it would scatter that list and must not change the bytes.
    """
    z = (traits - TRAIT_MEANS) / TRAIT_SDS
    ext, neu, agr, con, opn = np.clip(z, -3, 3)
    aus = np.tile(person["baseline"], (n_frames, 1))
    # extroversion: smile bursts (AU12 + AU25), AU06 with them when Duchenne (agreeableness)
    smiles = _onsets(rng, n_frames, 5.0 * np.exp(0.45 * ext))
    amplitude = np.clip(1.6 + 0.35 * ext + rng.normal(0, 0.3, len(smiles)), 0.3, None)
    smile_track = _events(n_frames, smiles, amplitude, 45)
    aus[:, AU["AU12_r"]] += smile_track
    aus[:, AU["AU25_r"]] += 0.5 * smile_track
    duchenne = rng.random(len(smiles)) < 1 / (1 + np.exp(-1.5 * agr))
    cheek_onsets = np.where(duchenne, smiles, rng.integers(0, n_frames, len(smiles)))
    aus[:, AU["AU06_r"]] += _events(n_frames, cheek_onsets, 0.8 * amplitude, 45)
    # extroversion: talking mouth activity (syllable-rate AU25/AU26 oscillation)
    talk = np.clip(0.45 + 0.15 * ext, 0.05, None) * (1 + np.sin(2 * np.pi * 4.5 * np.arange(n_frames) / FPS + rng.uniform(0, 6.3)))
    aus[:, AU["AU25_r"]] += talk
    aus[:, AU["AU26_r"]] += 0.6 * talk
    # neuroticism: frowns (AU04 + AU07), lip-corner depressor / chin raiser episodes, faster blinks
    frowns = _onsets(rng, n_frames, 2.5 * np.exp(0.5 * neu))
    frown_track = _events(n_frames, frowns, 1.4, 40)
    aus[:, AU["AU04_r"]] += frown_track
    aus[:, AU["AU07_r"]] += 0.7 * frown_track
    sad = _events(n_frames, _onsets(rng, n_frames, 1.5 * np.exp(0.5 * neu)), 1.0, 50)
    aus[:, AU["AU15_r"]] += sad
    aus[:, AU["AU17_r"]] += 0.8 * sad
    # blinks: rate from neuroticism, timing regularity from conscientiousness (same mean rate)
    blinks = _onsets(rng, n_frames, 17.0 * np.exp(0.2 * neu), regularity=float(np.clip(np.exp(0.9 * con), 0.35, 8.0)))
    aus[:, AU["AU45_r"]] += _events(n_frames, blinks, rng.uniform(2.0, 3.5, len(blinks)), 6)
    # conscientiousness: fewer fidgety dimpler / chin events
    fidgets = _onsets(rng, n_frames, 3.0 * np.exp(-0.35 * con))
    aus[:, AU["AU14_r"]] += _events(n_frames, fidgets, 0.9, 20)
    # openness: brow flashes (AU01 + AU02) followed by a smile when open; eye-widening AU05
    flashes = _onsets(rng, n_frames, 4.0)
    flash_track = _events(n_frames, flashes, 1.3, 15)
    aus[:, AU["AU01_r"]] += flash_track
    aus[:, AU["AU02_r"]] += 0.9 * flash_track
    followed = rng.random(len(flashes)) < 1 / (1 + np.exp(-1.5 * opn))
    after = np.where(followed, flashes + rng.integers(12, 24, len(flashes)), rng.integers(0, n_frames, len(flashes)))
    aus[:, AU["AU12_r"]] += _events(n_frames, after[after < n_frames], 0.8, 20)
    aus[:, AU["AU05_r"]] += _events(n_frames, _onsets(rng, n_frames, 2.0 * np.exp(0.3 * opn)), 0.9, 12)
    return _tracker(aus, person, rng)


def _sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-z)))


def _partner_times(rng: np.random.Generator, anchors: np.ndarray, linked: float, lag: tuple[int, int], n_frames: int) -> np.ndarray:
    """One partner event per anchor: ``anchor + lag`` with probability ``linked``, else at an unrelated time.

    Unrelated times are drawn from the same shifted range, so the number of partners that fall inside the
    clip does not depend on ``linked``; out-of-clip partners are dropped (negative lags mean "before").
    """
    shift = rng.integers(lag[0], lag[1] + 1, len(anchors))
    unrelated = rng.integers(0, n_frames, len(anchors)) + shift
    times = np.where(rng.random(len(anchors)) < linked, anchors + shift, unrelated)
    return times[(times >= 0) & (times < n_frames)]


def clip_aus_timing(traits: np.ndarray, person: dict, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Timing-only variant: traits move only the order, co-occurrence and regularity of events, never their rate or size.

    Every AU channel therefore has the same distribution of per-clip mean and standard deviation whatever the
    traits; see data/README.md for the links.
    """
    z = (traits - TRAIT_MEANS) / TRAIT_SDS
    ext, neu, agr, con, opn = np.clip(z, -3, 3)
    aus = np.tile(person["baseline"], (n_frames, 1))
    talk = 0.45 * (1 + np.sin(2 * np.pi * 4.5 * np.arange(n_frames) / FPS + rng.uniform(0, 6.3)))
    aus[:, AU["AU25_r"]] += talk
    aus[:, AU["AU26_r"]] += 0.6 * talk
    # smiles at a fixed rate and size; agreeableness: AU06 with the smile (Duchenne) or at an unrelated time
    smiles = _onsets(rng, n_frames, 6.0)
    aus[:, AU["AU12_r"]] += _events(n_frames, smiles, 1.6, 45)
    aus[:, AU["AU06_r"]] += _events(n_frames, _partner_times(rng, smiles, _sigmoid(1.5 * agr), (0, 3), n_frames), 1.3, 45)
    # extroversion: a jaw-drop laugh (AU26) 1.5-2.5 s after the smile starts, or unrelated (needs > 1 s of context)
    laughs = _partner_times(rng, smiles, _sigmoid(1.5 * ext), (45, 75), n_frames)
    aus[:, AU["AU26_r"]] += _events(n_frames, laughs, 1.2, 20)
    # neuroticism: lip-corner depressor (AU15) 0.3-0.7 s after a frown (AU04) when high, as long before it when low
    frowns = _onsets(rng, n_frames, 4.0)
    aus[:, AU["AU04_r"]] += _events(n_frames, frowns, 1.4, 40)
    order = np.where(rng.random(len(frowns)) < _sigmoid(1.5 * neu), 1, -1)
    sad = frowns + order * rng.integers(9, 22, len(frowns))
    aus[:, AU["AU15_r"]] += _events(n_frames, sad[(sad >= 0) & (sad < n_frames)], 1.0, 30)
    # conscientiousness: blink regularity at a fixed mean rate; a 0.3 s refractory gap keeps blinks from merging
    shape = float(np.clip(np.exp(0.9 * con), 0.35, 8.0))
    # (started 60 s before the clip, so that the expected count in the clip does not depend on the regularity)
    gaps = 9 + rng.gamma(shape, (60.0 * FPS / 17.0 - 9) / shape, size=int((n_frames + 1800) / 40 + 40))
    blinks = (np.cumsum(gaps) - 1800).astype(np.int64)
    blinks = blinks[(blinks >= 0) & (blinks < n_frames)]
    aus[:, AU["AU45_r"]] += _events(n_frames, blinks, rng.uniform(2.0, 3.5, len(blinks)), 6)
    # openness: brow flash (AU01 + AU02) followed 0.4-0.8 s later by a small smile-like AU10 raise, or unrelated
    flashes = _onsets(rng, n_frames, 4.0)
    flash_track = _events(n_frames, flashes, 1.3, 15)
    aus[:, AU["AU01_r"]] += flash_track
    aus[:, AU["AU02_r"]] += 0.9 * flash_track
    aus[:, AU["AU10_r"]] += _events(n_frames, _partner_times(rng, flashes, _sigmoid(1.5 * opn), (12, 24), n_frames), 1.0, 20)
    return _tracker(aus, person, rng)


MIXED_ROLES = ("timing", "statistics", "none")
MIXED_STRENGTHS = (0.7, 1.5)


def mixed_roles(seed: int) -> dict[str, tuple[str, float]]:
    """Each trait's link in the mixed variant, from ``seed`` alone: (role, strength), strength 0 for ``none``.

    Exactly one ``none`` trait, one to three ``timing`` traits, the rest ``statistics``; strengths uniform in 0.7-1.5.
    """
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(len(TRAITS))
    n_timing = int(rng.integers(1, 4))
    roles = ["none"] + ["timing"] * n_timing + ["statistics"] * (len(TRAITS) - 1 - n_timing)
    strengths = np.round(rng.uniform(*MIXED_STRENGTHS, len(TRAITS)), 2)
    assigned = {TRAITS[t]: (role, 0.0 if role == "none" else float(strength))
                for t, role, strength in zip(order, roles, strengths)}
    return {trait: assigned[trait] for trait in TRAITS}


def _talk_rhythm(aus: np.ndarray, n: int, rng: np.random.Generator, timing: float, size: float) -> None:
    """Extroversion slot: talking (AU25/AU26 oscillation near 4.5 Hz); timing moves its rhythm, statistics its amplitude."""
    hz = 4.5 * np.exp(0.06 * timing + 0.08 * rng.normal())
    amplitude = 0.45 * np.exp(0.12 * size + 0.1 * rng.normal())
    talk = amplitude * (1 + np.sin(2 * np.pi * hz * np.arange(n) / FPS + rng.uniform(0, 2 * np.pi)))
    aus[:, AU["AU25_r"]] += talk
    aus[:, AU["AU26_r"]] += 0.6 * talk


def _frown_lag(aus: np.ndarray, n: int, rng: np.random.Generator, timing: float, size: float) -> None:
    """Neuroticism slot: a frown (AU04 + AU07), then a lip-corner depressor (AU15 + AU17) 0.2-0.4 s later with
    probability sigmoid(1.5 timing), else 1.2-1.6 s later; statistics moves the frown rate."""
    frowns = _onsets(rng, max(n - 90, 0), 5.0 * np.exp(0.5 * size))
    short = rng.random(len(frowns)) < _sigmoid(1.5 * timing)
    lags = np.where(short, rng.integers(6, 13, len(frowns)), rng.integers(36, 49, len(frowns)))
    frown_track = _events(n, frowns, 1.4, 40)
    aus[:, AU["AU04_r"]] += frown_track
    aus[:, AU["AU07_r"]] += 0.6 * frown_track
    sad = _events(n, frowns + lags, 1.0, 30)
    aus[:, AU["AU15_r"]] += sad
    aus[:, AU["AU17_r"]] += 0.7 * sad


def _blink_regularity(aus: np.ndarray, n: int, rng: np.random.Generator, timing: float, size: float) -> None:
    """Agreeableness slot: blinks (AU45, 0.2 s, >= 0.3 s apart) with Dirichlet gaps of concentration
    clip(e^(0.9 timing), 0.35, 8), regular when high, clustered when low; statistics moves the rate (20/min x e^(0.3 size))."""
    count = min(int(rng.poisson(n / (60 * FPS) * 20.0 * np.exp(0.3 * size))), max(n - 6, 0) // 9 + 1)
    free = n - 6 - 9 * max(count - 1, 0)
    gaps = rng.dirichlet(np.full(count + 1, float(np.clip(np.exp(0.9 * timing), 0.35, 8.0))))[:-1]
    blinks = (np.cumsum(gaps) * free).astype(np.int64) + 9 * np.arange(count)
    aus[:, AU["AU45_r"]] += _events(n, blinks, rng.uniform(2.0, 3.5, count), 6)


def _skewed_pulse(rise: int, fall: int) -> np.ndarray:
    """A pulse peaking at 1 that rises over ``rise`` frames and falls over ``fall`` frames (raised-cosine halves)."""
    up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(rise) + 0.5) / rise)
    return np.concatenate([up, 0.5 + 0.5 * np.cos(np.pi * (np.arange(fall) + 0.5) / fall)])


def _dimple_shape(aus: np.ndarray, n: int, rng: np.random.Generator, timing: float, size: float) -> None:
    """Conscientiousness slot: dimpler events (AU14, 1 s) with a fast onset and slow release with probability
    sigmoid(1.5 timing), else the mirror image (the same values reversed); statistics moves their size."""
    onsets = _onsets(rng, max(n - 30, 0), 6.0)
    fast_onset = rng.random(len(onsets)) < _sigmoid(1.5 * timing)
    amplitude = 1.2 * np.exp(0.25 * size)
    pulse = _skewed_pulse(6, 24)
    for chosen, shape in ((fast_onset, pulse), (~fast_onset, pulse[::-1])):
        aus[:, AU["AU14_r"]] += np.convolve(_impulses(n, onsets[chosen], amplitude), shape)[:n]


def _flash_widening(aus: np.ndarray, n: int, rng: np.random.Generator, timing: float, size: float) -> None:
    """Openness slot: brow flashes (AU01 + AU02, 0.5 s); eye widening (AU05) starts with the flash (0-0.1 s) with
    probability sigmoid(1.5 timing), else at an unrelated time; statistics moves the flash rate (one AU05 per flash)."""
    flashes = _onsets(rng, max(n - 15, 0), 6.0 * np.exp(0.5 * size))
    flash_track = _events(n, flashes, 1.3, 15)
    aus[:, AU["AU01_r"]] += flash_track
    aus[:, AU["AU02_r"]] += 0.9 * flash_track
    with_flash = rng.random(len(flashes)) < _sigmoid(1.5 * timing)
    widening = np.where(with_flash, flashes + rng.integers(0, 3, len(flashes)), rng.integers(0, max(n - 14, 1), len(flashes)))
    aus[:, AU["AU05_r"]] += _events(n, widening, 1.0, 12)


MIXED_SLOTS = {"extroversion": _talk_rhythm, "neuroticism": _frown_lag, "agreeableness": _blink_regularity,
               "conscientiousness": _dimple_shape, "openness": _flash_widening}


def clip_aus_mixed(traits: np.ndarray, person: dict, n_frames: int, rng: np.random.Generator,
                   roles: dict[str, tuple[str, float]]) -> np.ndarray:
    """Mixed variant: each trait drives its own event family (MIXED_SLOTS) through its role in ``roles``
    (see mixed_roles): timing moves only when events happen or their shape, statistics their rate or size, none nothing.

    Smiles (AU12 + AU06 + AU25) at a fixed rate are linked to no trait. data/README.md lists the links.
    """
    z = np.clip((traits - TRAIT_MEANS) / TRAIT_SDS, -3, 3)
    aus = np.tile(person["baseline"], (n_frames, 1))
    smiles = _events(n_frames, _onsets(rng, max(n_frames - 45, 0), 5.0), 1.6, 45)
    aus[:, AU["AU12_r"]] += smiles
    aus[:, AU["AU06_r"]] += 0.7 * smiles
    aus[:, AU["AU25_r"]] += 0.5 * smiles
    for t, trait in enumerate(TRAITS):
        role, strength = roles[trait]
        drive = strength * z[t]
        MIXED_SLOTS[trait](aus, n_frames, rng, drive if role == "timing" else 0.0, drive if role == "statistics" else 0.0)
    return _tracker(aus, person, rng)


def _tracker(aus: np.ndarray, person: dict, rng: np.random.Generator) -> np.ndarray:
    """Person gain, tracker noise and occasional tracker spikes; clipped to 0..5, two decimals."""
    aus *= person["gain"]
    aus += rng.normal(0, 0.07, aus.shape)
    spikes = rng.random(aus.shape) < 0.002
    aus[spikes] += rng.uniform(0.5, 2.0, int(spikes.sum()))
    return np.round(np.clip(aus, 0.0, 5.0), 2)


VARIANTS = {"documented": clip_aus, "timing": clip_aus_timing, "mixed": clip_aus_mixed}
INDEPENDENT_TRAITS = {"mixed"}  # variants whose traits are drawn without inter-trait correlation


def _video_ids(rng: np.random.Generator, n: int) -> list[str]:
    return ["".join(rng.choice(_ID_ALPHABET, 11)) for _ in range(n)]


def _people(rng: np.random.Generator, n_clips: int, clips_per_person: tuple[int, int], spread: float,
            correlations: np.ndarray = TRAIT_CORRELATIONS):
    """Split ``n_clips`` among people: (person of each clip, segment number, person traits, person AU style)."""
    counts: list[int] = []
    while sum(counts) < n_clips:
        counts.append(int(rng.integers(clips_per_person[0], clips_per_person[1] + 1)))
    counts[-1] -= sum(counts) - n_clips
    traits = sample_traits(len(counts), rng, spread, correlations)
    styles = [{"baseline": np.clip(AU_BASELINE + rng.normal(0, 0.08, len(AU)), 0, None), "gain": rng.lognormal(0, 0.15)}
              for _ in counts]
    person = np.repeat(np.arange(len(counts)), counts)
    segment = np.concatenate([np.arange(c) for c in counts])
    return person, segment, traits, styles


def _label_values(scores: np.ndarray, label_format: str) -> np.ndarray:
    if label_format == "grid":
        return np.floor(scores * 4 + 0.5) / 4
    if label_format == "continuous":
        return np.round(scores, 6)
    raise ValueError(f"label_format must be 'grid' or 'continuous', not {label_format!r}")


def _clip_maker(variant: str, roles_seed: int) -> Callable:
    """The per-clip generator of ``variant``; the mixed one bound to the roles of ``roles_seed``."""
    if variant not in VARIANTS:
        raise PerfexError(f"unknown generator variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return partial(clip_aus_mixed, roles=mixed_roles(roles_seed)) if variant == "mixed" else VARIANTS[variant]


def generate_clips(n_clips: int, seed: int = 0, *, spread: float = 1.0, min_frames: int = 300, max_frames: int = 459,
                   clips_per_person: tuple[int, int] = (1, 6), lengths: Sequence[int] | None = None, progress: bool = False,
                   variant: str = "documented", roles_seed: int | None = None):
    """Per-clip arrays: (file names, clip scores [N,5], list of AU matrices); ``variant`` picks the links (VARIANTS).

    The mixed variant takes its trait roles from ``roles_seed`` (default ``seed``; see mixed_roles).
    """
    make_clip = _clip_maker(variant, seed if roles_seed is None else roles_seed)
    rng = np.random.default_rng(seed)
    correlations = np.eye(len(TRAITS)) if variant in INDEPENDENT_TRAITS else TRAIT_CORRELATIONS
    person, segment, traits, styles = _people(rng, n_clips, clips_per_person, spread, correlations)
    videos = _video_ids(rng, len(styles))
    files = [f"{videos[p]}.{s:03d}.mp4" for p, s in zip(person, segment)]
    scores = np.clip(traits[person] + rng.normal(0, 0.02, (n_clips, len(TRAITS))), 0, 1)
    frames = np.asarray(lengths) if lengths is not None else rng.integers(min_frames, max_frames + 1, n_clips)
    aus = [make_clip(scores[i], styles[person[i]], int(frames[i]), rng)
           for i in tqdm(range(n_clips), desc="generate", unit="clip", disable=not progress)]
    return files, scores, aus


def generate_perfex(n_clips: int, seed: int = 0, *, spread: float = 1.0, min_frames: int = 300, max_frames: int = 459,
                    clips_per_person: tuple[int, int] = (1, 6), labeled: bool = True, label_format: str = "grid",
                    id_start: int = 0, lengths: Sequence[int] | None = None, progress: bool = False,
                    variant: str = "documented", roles_seed: int | None = None) -> pd.DataFrame:
    """A PerFeX long table (one row per frame, every column of the published files)."""
    files, scores, aus = generate_clips(n_clips, seed, spread=spread, min_frames=min_frames, max_frames=max_frames,
                                        clips_per_person=clips_per_person, lengths=lengths, progress=progress, variant=variant,
                                        roles_seed=roles_seed)
    rng = np.random.default_rng([seed, 1])
    counts = np.array([len(a) for a in aus])
    intensities = np.concatenate(aus) if aus else np.zeros((0, len(AU)))
    n_rows = len(intensities)
    table: dict[str, object] = {"ID": np.repeat(np.arange(id_start, id_start + n_clips), counts),
                                "File": np.repeat(np.array(files, dtype=object), counts)}
    table.update({name: intensities[:, i] for i, name in enumerate(AU_INTENSITY_COLUMNS)})
    presence = _presence(intensities, rng)
    table.update({name: presence[:, i] for i, name in enumerate(AU_PRESENCE_COLUMNS)})
    spoken = rng.random(n_rows) < 0.08
    table["Word"] = np.where(spoken, np.array(WORDS, dtype=object)[rng.integers(0, len(WORDS), n_rows)], "")
    for name in CONTEXT_COLUMNS[1:]:
        table[name] = np.round(rng.normal(0, 1, n_rows), 4)
    happy = np.clip(intensities[:, AU["AU12_r"]] / 3 + rng.normal(0, 0.05, n_rows), 0, 1)
    angry = np.clip(intensities[:, AU["AU04_r"]] / 3 + rng.normal(0, 0.05, n_rows), 0, 1)
    sad = np.clip(intensities[:, AU["AU15_r"]] / 3 + rng.normal(0, 0.05, n_rows), 0, 1)
    surprise = np.clip(intensities[:, AU["AU02_r"]] / 3 + rng.normal(0, 0.05, n_rows), 0, 1)
    fear = np.clip(rng.normal(0.05, 0.03, n_rows), 0, 1)
    for name, values in zip(EMOTION_COLUMNS, (happy, angry, surprise, sad, fear)):
        table[name] = np.round(values, 4)
    labels = _label_values(scores, label_format) if labeled else np.full(scores.shape, np.nan)
    for t, trait in enumerate(TRAITS):
        table[trait] = np.repeat(labels[:, t], counts)
    return pd.DataFrame(table)


def _presence(intensities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """AUxx_c columns: presence where the intensity exceeds 1 (with a few flips); AU28 rare and random."""
    present = intensities > 1.0
    present ^= rng.random(present.shape) < 0.02
    au28 = rng.random(len(intensities)) < 0.03
    columns = [present[:, AU[name.replace("_c", "_r")]] if name != "AU28_c" else au28 for name in AU_PRESENCE_COLUMNS]
    return np.stack(columns, axis=1).astype(np.int8) if columns else np.zeros((0, len(AU_PRESENCE_COLUMNS)))


def openface_header() -> list[str]:
    """Column names of OpenFace 2.0.6 FeatureExtraction with -aus -pose -gaze (334 columns)."""
    columns = ["frame", "face_id", "timestamp", "confidence", "success"]
    columns += [f"gaze_{eye}_{axis}" for eye in (0, 1) for axis in "xyz"] + ["gaze_angle_x", "gaze_angle_y"]
    columns += [f"eye_lmk_{axis}_{i}" for axis in ("x", "y", "X", "Y", "Z") for i in range(56)]
    columns += ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    return columns + list(AU_INTENSITY_COLUMNS) + list(AU_PRESENCE_COLUMNS)


def openface_frame(aus: np.ndarray, rng: np.random.Generator, failure_rate: float = 0.03) -> pd.DataFrame:
    """One clip as an OpenFace output table: 30 fps timestamps, failed-tracking frames with zeroed values."""
    n = len(aus)
    failed = rng.random(n) < failure_rate
    confidence = np.where(failed, rng.uniform(0.0, 0.6, n), rng.uniform(0.85, 0.98, n))
    values: dict[str, np.ndarray] = {
        "frame": np.arange(1, n + 1), "face_id": np.zeros(n, dtype=np.int64), "timestamp": np.round(np.arange(n) / FPS, 3),
        "confidence": np.round(confidence, 2), "success": (~failed).astype(np.int64),
    }
    gaze = rng.normal([0.1, 0.1, -0.98, -0.05, 0.1, -0.99], 0.05, (n, 6))
    values.update({f"gaze_{eye}_{axis}": gaze[:, 3 * eye + j] for eye in (0, 1) for j, axis in enumerate("xyz")})
    values["gaze_angle_x"], values["gaze_angle_y"] = rng.normal(0.05, 0.1, n), rng.normal(0.1, 0.08, n)
    centre = {"x": 300.0, "y": 250.0, "X": -20.0, "Y": -10.0, "Z": 400.0}
    for axis, middle in centre.items():
        for i in range(56):
            values[f"eye_lmk_{axis}_{i}"] = middle + 15 * np.sin(i / 56 * 2 * np.pi) + rng.normal(0, 0.5, n)
    pose = rng.normal([10.0, 5.0, 450.0, 0.1, -0.05, 0.02], [3, 3, 10, 0.05, 0.05, 0.03], (n, 6))
    values.update({name: pose[:, i] for i, name in enumerate(("pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"))})
    presence = _presence(aus, rng)
    values.update({name: aus[:, i] for i, name in enumerate(AU_INTENSITY_COLUMNS)})
    values.update({name: presence[:, i] for i, name in enumerate(AU_PRESENCE_COLUMNS)})
    frame = pd.DataFrame(values)[openface_header()]
    tracked = [c for c in frame.columns if c not in ("frame", "face_id", "timestamp", "confidence", "success")]
    frame.loc[failed, tracked] = 0
    return frame


def generate_openface_dir(out_dir: Path, n_clips: int, seed: int = 0, *, spread: float = 1.0, min_frames: int = 300,
                          max_frames: int = 459, labels_path: Path | None = None, label_format: str = "grid",
                          compress: bool = True, progress: bool = False, variant: str = "documented",
                          roles_seed: int | None = None) -> list[Path]:
    """One OpenFace CSV per clip, named like First Impressions videos; optionally a labels CSV (File + traits)."""
    files, scores, aus = generate_clips(n_clips, seed, spread=spread, min_frames=min_frames, max_frames=max_frames,
                                        progress=progress, variant=variant, roles_seed=roles_seed)
    rng = np.random.default_rng([seed, 2])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, clip in zip(files, aus):
        path = out_dir / (name.removesuffix(".mp4") + (".csv.gz" if compress else ".csv"))
        frame = openface_frame(clip, rng)
        text = frame.to_csv(index=False, float_format="%.3f").replace(",", ", ")
        path.write_bytes(_gzip(text) if compress else text.encode())
        written.append(path)
    if labels_path is not None:
        labels = pd.DataFrame(_label_values(scores, label_format), columns=list(TRAITS))
        labels.insert(0, "File", files)
        write_table(labels, Path(labels_path))
    return written


def _gzip(text: str) -> bytes:
    import gzip

    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a generated table as CSV or CSV.GZ (byte-identical for the same table)."""
    path = Path(path)
    if path.name.endswith(".gz"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_gzip(frame.to_csv(index=False, float_format="%.4g")))
    else:
        write_arrow_table(pa.Table.from_pandas(frame, preserve_index=False), path)


def _lengths(spec: str | None) -> list[int] | None:
    return [int(v) for v in spec.split(",")] if spec else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perfex.data.synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="format", required=True)
    for name, help_text in (("perfex", "PerFeX long CSV (one row per frame)"), ("openface", "a folder of OpenFace 2 CSVs")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--clips", type=int, required=True, help="number of clips")
        p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
        p.add_argument("--spread", type=float, default=1.0, help="scale of trait deviations (1 = First Impressions; 2-3 easier)")
        p.add_argument("--min-frames", type=int, default=300, help="shortest clip (default 300 = 10 s)")
        p.add_argument("--max-frames", type=int, default=459, help="longest clip (default 459 = 15.3 s)")
        p.add_argument("--variant", choices=tuple(VARIANTS), default="documented",
                       help="planted links: documented (data/README.md table), timing (order/co-occurrence/regularity only) "
                            "or mixed (per-trait timing, statistics or no link, drawn from --roles-seed)")
        p.add_argument("--roles-seed", type=int, default=None,
                       help="seed of the mixed variant's trait roles (default: --seed; give the same one to a test set)")
        p.add_argument("--continuous-labels", action="store_true", help="raw trait scores instead of the 0/.25/.5/.75/1 grid")
        p.add_argument("--out", type=Path, required=True, help="output file (.csv/.csv.gz) or folder (openface)")
    perfex = sub.choices["perfex"]
    perfex.add_argument("--no-labels", action="store_true", help="leave the trait columns empty (a deploy input)")
    perfex.add_argument("--id-start", type=int, default=0, help="first clip ID")
    perfex.add_argument("--extra-lengths", help="append clips of these lengths, e.g. 20,35,900,1500")
    sub.choices["openface"].add_argument("--labels-out", type=Path, help="also write a labels CSV (File + five traits)")
    args = parser.parse_args(argv)
    label_format = "continuous" if args.continuous_labels else "grid"
    roles_seed = args.seed if args.roles_seed is None else args.roles_seed
    if args.format == "perfex":
        frame = generate_perfex(args.clips, args.seed, spread=args.spread, min_frames=args.min_frames, max_frames=args.max_frames,
                                labeled=not args.no_labels, label_format=label_format, id_start=args.id_start, progress=True,
                                variant=args.variant, roles_seed=roles_seed)
        extra = _lengths(args.extra_lengths)
        if extra:
            more = generate_perfex(len(extra), args.seed + 1, spread=args.spread, labeled=not args.no_labels,
                                   label_format=label_format, id_start=args.id_start + args.clips, lengths=extra,
                                   variant=args.variant, roles_seed=roles_seed)
            frame = pd.concat([frame, more], ignore_index=True)
        write_table(frame, args.out)
        print(f"wrote {frame['ID'].nunique()} clips, {len(frame)} rows -> {args.out}")
    else:
        paths = generate_openface_dir(args.out, args.clips, args.seed, spread=args.spread, min_frames=args.min_frames,
                                      max_frames=args.max_frames, labels_path=args.labels_out, label_format=label_format,
                                      progress=True, variant=args.variant, roles_seed=roles_seed)
        print(f"wrote {len(paths)} OpenFace CSVs -> {args.out}" + (f" and labels -> {args.labels_out}" if args.labels_out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
