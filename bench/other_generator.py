"""The statistics start on data from a second, independent generator (synthetic), beside its baselines.

``perfex.data.synth`` makes the quality benchmark's clips; a change tuned to its events would look good there and
nowhere else. This generator shares none of its code or event shapes: every AU is AR(1) noise around its own
baseline, events are triangles, and each clip's person draws five latent traits, three of them planted in timing
only, one in a clip statistic, one nowhere:

- extroversion, **rhythm**: lips-part bursts (AU25) at a person-specific period of 40-80 frames, jittered less the
  higher the trait (regular against irregular, same mean rate);
- neuroticism, **order**: each cheek raise (AU06) comes with a dimpler (AU14) 12 x trait frames later (before it
  when negative);
- agreeableness, **shape**: nose wrinkles (AU09) rise fast and fall slowly, or the reverse, by the trait (the
  same area, so the same per-clip mean and spread);
- conscientiousness, **statistics**: the brow lowerer's (AU04) baseline moves with the trait;
- openness: **none**.

Per trait: Pearson r of the expected level on the timing traits, accuracy on the other two, on test clips of
people never trained on. Systems: logistic regression on AU mean/std, the start alone (``bench/start_only.py``)
with kernel taps reading one frame and the mean of their spacing, and MiniRocket + ridge (``bench/quality.py``).

    python bench/other_generator.py --seed 0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import quality  # noqa: E402
import start_only  # noqa: E402
from models.wide import KERNEL_FEATURES, KERNEL_TAP_READS  # noqa: E402
from perfex.core.clips import ClipSet  # noqa: E402
from perfex.core.schema import AU_INTENSITY_COLUMNS  # noqa: E402

ROLES = ("timing: rhythm", "timing: order", "timing: shape", "statistics", "none")
LEVEL_CUTS = (-0.84, -0.25, 0.25, 0.84)  # latent trait -> five levels of about equal size
CLIPS_PER_PERSON = 3
AU = {name: i for i, name in enumerate(AU_INTENSITY_COLUMNS)}


def _triangle(track: np.ndarray, onset: float, rise: float, fall: float, height: float) -> None:
    """Add a triangle event (``rise`` frames up to ``height``, ``fall`` frames down) starting at ``onset``."""
    frames = np.arange(len(track))
    up = (frames - onset) / rise
    down = 1 - (frames - onset - rise) / fall
    track += height * np.clip(np.where(frames < onset + rise, up, down), 0, None) * (frames >= onset)


def _poisson_onsets(rng: np.random.Generator, n_frames: int, mean_gap: float) -> np.ndarray:
    return np.sort(rng.uniform(0, n_frames, rng.poisson(n_frames / mean_gap)))


def one_clip(rng: np.random.Generator, traits: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """[frames, 17] AU intensities of one clip of a person with latent ``traits`` and AU ``baseline``."""
    n_frames = int(rng.integers(300, 451))
    noise = rng.normal(0, 0.08, (n_frames, len(AU)))
    x = np.zeros_like(noise)
    for t in range(1, n_frames):
        x[t] = 0.95 * x[t - 1] + noise[t]
    x += baseline
    for name in AU:  # trait-free events on every AU
        for onset in _poisson_onsets(rng, n_frames, 150):
            _triangle(x[:, AU[name]], onset, rng.uniform(4, 12), rng.uniform(4, 12), rng.uniform(0.5, 1.5))
    period, jitter = rng.uniform(40, 80), 0.5 / (1 + np.exp(2 * traits[0]))
    onset = rng.uniform(0, period)
    while onset < n_frames:
        _triangle(x[:, AU["AU25_r"]], onset, 5, 5, rng.uniform(1.0, 2.0))
        onset += period * max(0.2, 1 + jitter * rng.normal())
    for onset in _poisson_onsets(rng, n_frames, 80):
        height = rng.uniform(1.0, 2.0)
        _triangle(x[:, AU["AU06_r"]], onset, 6, 6, height)
        _triangle(x[:, AU["AU14_r"]], onset + 12 * traits[1], 6, 6, height)
    rise = 10 + 7 * np.tanh(traits[2])
    for onset in _poisson_onsets(rng, n_frames, 90):
        _triangle(x[:, AU["AU09_r"]], onset, rise, 20 - rise, rng.uniform(1.0, 2.0))
    x[:, AU["AU04_r"]] += 0.25 * traits[3]
    return np.clip(x, 0, 5)


def make_clips(n_people: int, seed: int, id_start: int) -> ClipSet:
    """``n_people`` people, ``CLIPS_PER_PERSON`` clips each, as a ClipSet with five-level labels."""
    rng = np.random.default_rng(seed)
    clips, levels, files = [], [], []
    for person in range(n_people):
        traits = rng.normal(size=5)
        baseline = rng.uniform(0, 0.6, len(AU))
        for k in range(CLIPS_PER_PERSON):
            clips.append(one_clip(rng, traits, baseline))
            levels.append(np.digitize(traits, LEVEL_CUTS))
            files.append(f"person{id_start + person}.{k:03d}.mp4")
    lengths = np.array([len(c) for c in clips])
    return ClipSet(ids=np.arange(id_start * CLIPS_PER_PERSON, id_start * CLIPS_PER_PERSON + len(clips)),
                   files=np.array(files, dtype=object), offsets=np.concatenate([[0], np.cumsum(lengths)]),
                   features=np.concatenate(clips).astype(np.float32),
                   times=np.concatenate([np.arange(n) / 30.0 for n in lengths]), levels=np.array(levels, dtype=np.int64))


def scores(probs: np.ndarray, levels: np.ndarray) -> list[float]:
    """Per trait: r of the expected level on timing traits, accuracy elsewhere."""
    traits = quality.per_trait_scores(levels, [probs])
    return [traits[t]["pearson_r" if role.startswith("timing") else "accuracy"] for t, role in zip(quality.TRAITS, ROLES)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="data seed (default: %(default)s)")
    parser.add_argument("--people", type=int, default=300, help="training people, 3 clips each (default: %(default)s)")
    parser.add_argument("--no-peer", action="store_true", help="leave MiniRocket out (it needs aeon)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sets = {"train": make_clips(args.people, args.seed, 0),
            "val": make_clips(args.people // 3, args.seed + 1000, 100_000),
            "test": make_clips(args.people, args.seed + 2000, 200_000)}
    print(f"roles: {', '.join(f'{t[:3]} {r}' for t, r in zip(quality.TRAITS, ROLES))}")
    print("per trait: r on timing traits, accuracy on the others (test clips of other people)")
    test_levels = sets["test"].levels
    rows = [("logistic regression, AU mean/std", lambda: quality.logreg(sets, args.seed))]
    rows += [(f"start, taps read {'their spacing mean' if taps == 'mean' else 'one frame'}",
              lambda taps=taps: start_only.start_probabilities(sets, KERNEL_FEATURES, args.seed, taps))
             for taps in reversed(KERNEL_TAP_READS)]
    if not args.no_peer and quality.aeon_available():
        rows.append(("MiniRocket + ridge", lambda: quality.minirocket(sets, args.seed)))
    for name, fit in rows:
        started = time.perf_counter()
        values = scores(fit(), test_levels)
        print(f"  {name:36s} {' / '.join(f'{v:.3f}' for v in values)}   ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
