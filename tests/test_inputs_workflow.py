"""Other extractors, more inputs, per-clip normalisation and folders as people keep them, through the scripts."""

import shutil

import numpy as np
import pandas as pd
import pytest

from helpers import REAL, run_script
from perfex.checkpoint.io import read_config
from perfex.core.schema import TRAITS
from test_readers_extractors import write_pyfeat
from test_readers_folders import write_openface

pytestmark = pytest.mark.e2e


def labels_for(names: list[str], path) -> str:
    levels = np.arange(len(names)) % 5 / 4
    pd.DataFrame({"File": [f"{n}.mp4" for n in names], **{t: levels for t in TRAITS}}).to_csv(path, index=False)
    return str(path)


def test_au_gaze_pose_end_to_end_on_the_real_openface_206_sample(tmp_path):
    """The 22 inputs of the authors' later work: train, test and deploy on copies of the real OpenFace 2.0.6 file."""
    sample = REAL / "openface2.0.6_sample_default.csv.gz"
    if not sample.exists():
        pytest.skip("real OpenFace 2.0.6 sample not available")
    folder = tmp_path / "openface"
    folder.mkdir()
    names = [f"{chr(97 + k) * 11}.000" for k in range(6)]
    for name in names:
        shutil.copy(sample, folder / f"{name}.csv.gz")
    labels = labels_for(names, tmp_path / "labels.csv")
    run = tmp_path / "run"
    result = run_script("1dcnn_train.py", "--data", str(folder), "--labels", labels, "--features", "au+gaze+pose", "--epochs", "1",
                        "--val-fraction", "0.34", "--test-fraction", "0.34", "--out", str(run), "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    meta = read_config(run / "best.safetensors")
    assert len(meta.feature_names) == 22 and meta.feature_names[-5:] == ["gaze_angle_x", "gaze_angle_y", "pose_Rx", "pose_Ry", "pose_Rz"]
    tested = run_script("1dcnn_test.py", "--weights", str(run), "--out", str(tmp_path / "t"), "--bootstrap", "10", "--no-progress")
    assert tested.returncode == 0, tested.stderr[-2000:]
    deployed = run_script("1dcnn_deploy.py", "--weights", str(run), "--data", str(folder), "--out", str(tmp_path / "d.csv"), "--no-progress")
    assert deployed.returncode == 0, deployed.stderr[-2000:]
    assert (pd.read_csv(tmp_path / "d.csv")["status"] == "ok").sum() == 6
    au_only = run_script("1dcnn_deploy.py", "--data", str(folder), "--out", str(tmp_path / "au.csv"), "--no-progress")
    assert au_only.returncode == 0  # the shipped AU-only weights read the same files with 17 inputs


def test_clip_median_is_stored_and_applied_at_deploy(learnable_csv, tmp_path):
    """Trained with --normalize clip-median, deploy centres each clip too: a constant offset per clip changes nothing."""
    run = tmp_path / "run"
    result = run_script("1dcnn_train.py", "--data", str(learnable_csv), "--normalize", "clip-median", "--epochs", "1",
                        "--out", str(run), "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    assert read_config(run / "best.safetensors").normalize == "clip-median"
    frame = pd.read_csv(learnable_csv).head(3000)
    shifted = frame.copy()
    au = [c for c in frame.columns if c.endswith("_r")]
    shifted[au] = shifted[au] + (shifted["ID"] % 3).to_numpy()[:, None] * 0.5
    for name, table in (("a", frame), ("b", shifted)):
        table.to_csv(tmp_path / f"{name}.csv", index=False)
        out = run_script("1dcnn_deploy.py", "--weights", str(run), "--data", str(tmp_path / f"{name}.csv"),
                         "--out", str(tmp_path / f"{name}_pred.csv"), "--no-progress")
        assert out.returncode == 0, out.stderr[-2000:]
    a, b = pd.read_csv(tmp_path / "a_pred.csv"), pd.read_csv(tmp_path / "b_pred.csv")
    probs = [c for c in a.columns if c.startswith("p_")]
    np.testing.assert_allclose(a[probs].to_numpy(), b[probs].to_numpy(), atol=1e-4)


def test_deploy_over_a_folder_as_people_keep_it_accounts_for_every_extractor_file(tmp_path):
    """Nested repeated names, an upper-case suffix, a 0-byte file, a labels CSV, OpenFace side files: one row per file."""
    folder = tmp_path / "study"
    write_openface(folder / "session1" / "participant01.csv", 80)
    write_openface(folder / "session2" / "participant01.csv", 90)
    write_openface(folder / "clipA.CSV", 70)
    (folder / "crashed.csv").write_bytes(b"")
    labels_for(["participant01"], folder / "labels.csv")
    (folder / "clipA_of_details.txt").write_text("details\n")
    (folder / "clipA_aligned").mkdir()
    (folder / "clipA_aligned" / "frame_det_00_000001.bmp").write_bytes(b"BM")
    out = tmp_path / "pred.csv"
    result = run_script("1dcnn_deploy.py", "--data", str(folder), "--out", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    table = pd.read_csv(out)
    assert sorted(table["ID"]) == ["clipA", "crashed", "session1/participant01", "session2/participant01"]
    assert table.set_index("ID").loc["crashed", "status"] == "unreadable"
    assert "empty" in table.set_index("ID").loc["crashed", "note"]
    assert (table["status"] == "ok").sum() == 3
    assert "skipped" in result.stderr and "labels.csv" in result.stderr
    refused = run_script("1dcnn_train.py", "--data", str(folder), "--labels", str(folder / "labels.csv"), "--out", str(tmp_path / "r"))
    assert refused.returncode == 2 and "crashed.csv" in refused.stderr


def test_weights_refuse_another_extractors_output_unless_allowed(tmp_path):
    data = tmp_path / "pyfeat"
    data.mkdir()
    write_pyfeat(data / "a.csv", list(range(60)))
    out = tmp_path / "pred.csv"
    refused = run_script("attn_deploy.py", "--data", str(data), "--out", str(out))
    assert refused.returncode == 2 and "py-feat AU probabilities" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not out.exists()
    allowed = run_script("1dcnn_deploy.py", "--data", str(data), "--out", str(out), "--allow-extractor-mismatch",
                         "--min-frames", "10", "--no-progress")
    assert allowed.returncode == 2 and "features" in allowed.stderr  # py-feat has no AU45: the 17-AU weights cannot run
