"""bench/other_generator.py plants what its docstring says: an order in timing only, a statistic in a mean."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

pytestmark = pytest.mark.unit


def test_the_second_generator_plants_an_order_in_timing_and_a_statistic_in_a_mean():
    from other_generator import AU, make_clips

    clips = make_clips(40, seed=0, id_start=0)
    assert len(clips) == 120 and set(np.unique(clips.levels)) <= set(range(5))
    lags, follow_means, brow = [], [], []
    for i in range(len(clips)):
        x = clips.clip(i)
        cheek, dimpler = (x[:, AU[name]] - x[:, AU[name]].mean() for name in ("AU06_r", "AU14_r"))
        shifts = range(-30, 31)
        lags.append(shifts[int(np.argmax([np.dot(cheek[max(0, -s):len(cheek) - max(0, s)],
                                                 dimpler[max(0, s):len(dimpler) - max(0, -s)]) for s in shifts]))])
        follow_means.append(x[:, AU["AU14_r"]].mean())
        brow.append(x[:, AU["AU04_r"]].mean())
    neuroticism, conscientiousness = clips.levels[:, 1], clips.levels[:, 3]
    assert np.corrcoef(lags, neuroticism)[0, 1] > 0.5  # the dimpler's delay after the cheek raise follows the trait
    assert abs(np.corrcoef(follow_means, neuroticism)[0, 1]) < 0.3  # ... and its mean does not
    assert np.corrcoef(brow, conscientiousness)[0, 1] > 0.3
