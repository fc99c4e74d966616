"""torchrun DDP on CPU (gloo): disjoint rank shares, one writer, metrics equal to a single-process evaluation."""

import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO, run_script
from perfex.checkpoint.io import load_checkpoint, read_config
from perfex.core.distributed import Context
from perfex.data.readers import load_clips
from perfex.data.splits import load_manifest, split_indices
from perfex.data.options import RunOptions
from perfex.train.loop import scores_of, validation_predictions

pytestmark = pytest.mark.e2e


def torchrun() -> list[str]:
    launcher = Path(sys.executable).with_name("torchrun")
    if not launcher.exists():
        pytest.skip("torchrun is not installed beside this Python")
    return [str(launcher)]


def test_two_rank_training_matches_single_process_evaluation(learnable_csv, tmp_path):
    import subprocess

    out = tmp_path / "ddp"
    command = [*torchrun(), "--standalone", "--nproc_per_node=2", "1dcnn_train.py", "--data", str(learnable_csv),
               "--out", str(out), "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--record-samples", "--no-progress"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    # one writer: one summary line, one metrics row, one checkpoint of each kind
    assert len(re.findall(r"best epoch \d", result.stdout)) == 1
    assert (out / "metrics.csv").read_text().count("\n") == 3  # header, epoch 0 (the statistics start), epoch 1
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["best.safetensors", "last.optim.safetensors", "last.safetensors"]
    # ranks trained on disjoint clips that together cover the training split (at most one clip sits out)
    seen = [set((out / f"samples_rank{r}.txt").read_text().split()) for r in (0, 1)]
    assert seen[0] and seen[1] and not seen[0] & seen[1]
    clips = load_clips([learnable_csv], require_labels=True)
    clips = clips.subset(np.flatnonzero(clips.lengths >= 40))
    parts = split_indices(clips, load_manifest(out / "split.json"))
    assert len(parts["train"]) - len(seen[0] | seen[1]) in (0, 1)
    # validation metrics reduced across ranks equal a single-process evaluation of the same weights
    model, _ = load_checkpoint(out / "last.safetensors")
    probs, order = validation_predictions(Context(0, 1, 0, __import__("torch").device("cpu")), model, clips, parts["val"],
                                          RunOptions(batch_size=8))
    single = scores_of(probs, clips.levels[order], clips.scores[order], model.config.output)
    logged = read_config(out / "last.safetensors").metrics
    for key in ("val_loss", "val_accuracy", "val_f1_macro"):
        assert logged[key] == pytest.approx(single[key], abs=1e-6), key


def test_same_command_without_torchrun_still_runs(learnable_csv, tmp_path):
    result = run_script("1dcnn_train.py", "--data", str(learnable_csv), "--out", str(tmp_path / "one"), "--epochs", "1",
                        "--device", "cpu", "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "one" / "best.safetensors").exists()
    rerun = run_script("1dcnn_train.py", "--data", str(learnable_csv), "--out", str(tmp_path / "one"), "--epochs", "1")
    assert rerun.returncode == 2 and "--resume" in rerun.stderr
    shutil.rmtree(tmp_path / "one")
