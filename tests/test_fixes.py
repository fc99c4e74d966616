"""The shared bootstrap, deploy without a readable clip, checkpoints that do not fit their config, deploy's phases."""

from __future__ import annotations

import gzip
import json
import shutil
import threading

import numpy as np
import pytest
from helpers import REPO, run_script

from perfex.core.errors import PerfexError
from perfex.core.metrics import bootstrap_interval, bootstrap_rows

pytestmark = pytest.mark.e2e

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
    from models import create_model
    from perfex.checkpoint.io import load_checkpoint

    weights = mismatched_checkpoint(tmp_path, "cnn", "cnn", head_hidden=64)
    with pytest.raises(PerfexError) as raised:
        load_checkpoint(weights)
    message = str(raised.value)
    assert message.startswith(f"{weights} does not fit the cnn model described by x.json: ")
    pooled = create_model("cnn").head[0].in_features
    assert f"tensor head.0.weight should be [64, {pooled}] but is [128, {pooled}]" in message and "\n" not in message


@pytest.mark.parametrize("inputs", ["file", "folder"])
def test_deploy_without_a_readable_clip_exits_2_and_writes_nothing(inputs, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "crashed.csv").write_bytes(b"")
    if inputs == "folder":
        (folder / "scrambled.csv").write_bytes(b"\x00\x01\x02")  # read after crashed.csv
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    result = run_script("attn_deploy.py", "--data", str(folder if inputs == "folder" else folder / "crashed.csv"),
                        "--out", str(out), "--per-frame", str(out.parent / "rows.csv"), "--no-progress")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "no input clip could be read" in result.stderr
    assert "crashed.csv is empty" in result.stderr and ("2 files" in result.stderr) == (inputs == "folder")
    assert not list(out.parent.iterdir())


def test_a_folder_with_some_readable_files_keeps_a_row_per_unreadable_file(tmp_path):
    import pandas as pd

    folder = tmp_path / "in"
    shutil.copytree(REPO / "data" / "openface_deploy", folder)
    (folder / "crashed.csv").write_bytes(b"")
    out = tmp_path / "pred.csv"
    result = run_script("1dcnn_deploy.py", "--data", str(folder), "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out).set_index("ID")
    assert len(table) == 7 and table.loc["crashed", "status"] == "unreadable" and (table["status"] == "ok").sum() == 6


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "perfex-read-ahead"]


def test_deploy_phases_stop_the_reader_when_the_engine_fails_and_when_done(tmp_path):
    """A reader thread still inside Arrow when the interpreter exits aborts it: deploy waits for its reader."""
    from perfex.infer.deploy import deploy
    from perfex.data.options import DeployConfig, build_config

    def config(weights, out):
        return build_config(DeployConfig, "cnn", weights=str(weights), data=[str(REPO / "data" / "deploy.csv.gz")],
                            out=str(out), runtime="torch", progress=False, chunk_rows=2000)

    with pytest.raises(PerfexError, match="does not fit"):
        deploy(config(mismatched_checkpoint(tmp_path, "attn", "cnn"), tmp_path / "a.csv"))
    assert not reader_threads() and not (tmp_path / "a.csv").exists()
    summary = deploy(config(WEIGHTS / "cnn.safetensors", tmp_path / "b.csv"))
    assert summary["clips_written"] == 40 and not reader_threads()


def test_original_pt_weights_are_read_with_what_their_loaded_metadata_says(tmp_path):
    """Deploy starts reading before torch loads a .pt file, with the metadata such a file implies."""
    import torch

    from models import create_model
    from perfex.checkpoint.io import legacy_meta
    from perfex.infer.deploy_input import reading_meta

    for family in ("cnn", "attn"):
        model = create_model(f"legacy_{family}")
        path = tmp_path / f"{family}_180.pt"
        torch.save(model.state_dict(), path)
        implied, loaded = reading_meta(path, family), legacy_meta(model, path)
        for field in ("model", "legacy", "feature_names", "normalization", "normalize", "provenance", "label_binning"):
            assert getattr(implied, field) == getattr(loaded, field), field


def test_whole_file_reads_give_arrow_threads_no_python_handler(tmp_path, monkeypatch):
    """Arrow's threads drop a Python row handler late; during interpreter shutdown that aborts the process."""
    import pyarrow.csv as pacsv

    from perfex.data.readers import load_clips

    calls = []
    read_csv = pacsv.read_csv

    def recorded(source, read_options, parse_options, convert_options):
        calls.append((read_options.use_threads, parse_options.invalid_row_handler is not None))
        return read_csv(source, read_options=read_options, parse_options=parse_options, convert_options=convert_options)

    monkeypatch.setattr(pacsv, "read_csv", recorded)
    good = REPO / "data" / "openface_deploy" / "cyIVkcs6vIe.000.csv.gz"
    load_clips([good])
    assert calls == [(True, False)]
    text = gzip.decompress(good.read_bytes()).decode().splitlines()
    (tmp_path / "cut.csv").write_text("\n".join([*text[:50], text[50][:40], *text[51:]]) + "\n")
    calls.clear()
    clips = load_clips([tmp_path / "cut.csv"], nan_policy="drop-frames")
    assert calls == [(True, False), (False, True)] and clips.dropped_frames[0] >= 1
