"""The shared bootstrap, deploy without a readable clip, checkpoints that do not fit their config, deploy's phases."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import REPO, run_script

from perfex.errors import PerfexError
from perfex.metrics import bootstrap_interval, bootstrap_rows

WEIGHTS = REPO / "weights"


def test_bootstrap_rows_draw_whole_groups_with_replacement_and_repeat_with_the_seed():
    groups = np.array(["b", "a", "b", "c", "a", "b"])
    resamples = list(bootstrap_rows(groups, 50, seed=3))
    for rows in resamples:
        drawn = groups[rows]
        starts = np.flatnonzero(np.r_[True, drawn[1:] != drawn[:-1]])
        sizes = np.diff(np.r_[starts, len(drawn)])
        # every drawn group comes whole (a run of 2 a's, 3 b's or 1 c); as many draws as there are groups
        assert all(size % {"a": 2, "b": 3, "c": 1}[drawn[s]] == 0 for s, size in zip(starts, sizes))
        assert sum(size // {"a": 2, "b": 3, "c": 1}[drawn[s]] for s, size in zip(starts, sizes)) == 3
    assert {len(rows) for rows in resamples} != {6}  # group sizes differ, so resample sizes do
    assert all((a == b).all() for a, b in zip(resamples, bootstrap_rows(groups, 50, seed=3)))


def test_one_group_per_row_resamples_rows_as_numpy_draws_them():
    rng = np.random.default_rng(5)
    for rows in bootstrap_rows(np.arange(7), 10, seed=5):
        np.testing.assert_array_equal(rows, rng.integers(0, 7, 7))


def test_bootstrap_interval_keeps_the_statistics_shape_and_leaves_non_finite_draws_out():
    values = np.arange(10.0)
    low, high = bootstrap_interval(lambda rows: np.array([values[rows].mean(), np.nan]), np.arange(10) // 2, 200)
    assert low.shape == high.shape == (2,)
    assert low[0] < values.mean() < high[0] and np.isnan(low[1]) and np.isnan(high[1])
    with pytest.raises(PerfexError, match="positive number of bootstrap resamples"):
        bootstrap_interval(np.mean, np.arange(3), 0)


def mismatched_checkpoint(folder, weights: str, config: str, **model_config):
    """``folder/x.safetensors`` copied from ``weights``, beside ``folder/x.json`` from ``config`` (with
    ``model_config`` changes)."""
    meta = json.loads((WEIGHTS / f"{config}.json").read_text())
    meta["model_config"].update(model_config)
    shutil.copy(WEIGHTS / f"{weights}.safetensors", folder / "x.safetensors")
    (folder / "x.json").write_text(json.dumps(meta))
    return folder / "x.safetensors"


def test_weights_of_another_model_beside_a_config_fail_in_one_line_naming_the_tensor(tmp_path):
    weights = mismatched_checkpoint(tmp_path, "attn", "cnn")
    out = tmp_path / "pred.csv"
    result = run_script("1dcnn_deploy.py", "--weights", str(weights), "--out", str(out), "--runtime", "torch")
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert str(weights) in result.stderr and "x.json" in result.stderr and "its own header says attn" in result.stderr
    assert "tensor first.0.weight [64, 17, 3] is missing" in result.stderr
    assert not out.exists()


def test_load_checkpoint_names_the_first_tensor_whose_shape_differs(tmp_path):
    from perfex.checkpoint import load_checkpoint

    weights = mismatched_checkpoint(tmp_path, "cnn", "cnn", head_hidden=64)
    with pytest.raises(PerfexError) as raised:
        load_checkpoint(weights)
    message = str(raised.value)
    assert message.startswith(f"{weights} does not fit the cnn model described by x.json: ")
    assert "tensor head.0.weight should be [64, 1024] but is [128, 1024]" in message and "\n" not in message
