"""Inference windows and their batches: NumPy helpers shared by both deploy runtimes."""

import numpy as np
import pytest

from perfex.core.windows import shared_times

pytestmark = pytest.mark.unit


def padded(times: np.ndarray, lengths: list[int]) -> np.ndarray:
    rows = np.zeros((len(lengths), len(times)), dtype=np.float32)
    for row, length in enumerate(lengths):
        rows[row, :length] = times[:length]
    return rows


def test_windows_at_one_frame_rate_share_one_row_of_times():
    steady = np.arange(40, dtype=np.float32) / 30
    lengths = np.array([25, 40, 3])
    got = shared_times(padded(steady, lengths.tolist()), lengths)
    assert got.shape == (1, 40)
    np.testing.assert_array_equal(got[0], steady)


def test_a_dropped_frame_keeps_times_per_window():
    steady = np.arange(40, dtype=np.float32) / 30
    times = padded(steady, [25, 40])
    times[0, 10:25] += 1 / 30  # the first window skipped a frame
    lengths = np.array([25, 40])
    np.testing.assert_array_equal(shared_times(times, lengths), times)
    np.testing.assert_array_equal(shared_times(times[:1], lengths[:1]), times[:1])
