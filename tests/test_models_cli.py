"""Model contract through the scripts: --freeze-encoder on original weights, invalid model configs as one-line errors."""

import json
import shutil

import pytest
import torch

from helpers import REPO, run_script
from test_legacy_checkpoints import original_state_dict

pytestmark = pytest.mark.e2e


def test_freeze_encoder_retrains_only_the_head_of_original_weights(learnable_csv, tmp_path):
    from perfex.checkpoint.io import load_checkpoint

    source = tmp_path / "cnn_180.pt"
    torch.save(original_state_dict("legacy_cnn"), source)
    result = run_script("1dcnn_retrain.py", "--weights", str(source), "--freeze-encoder", "--data", str(learnable_csv),
                        "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress")
    assert result.returncode == 0, result.stderr
    before, after = load_checkpoint(source)[0].state_dict(), load_checkpoint(tmp_path / "run" / "last.safetensors")[0].state_dict()
    changed = sorted(k for k, v in after.items() if not torch.equal(v, before[k]))
    assert changed and all(k.startswith("linear_layer_stack.") for k in changed)


def test_a_checkpoint_with_an_invalid_model_config_is_refused_in_one_line(deploy_csv, tmp_path):
    weights = tmp_path / "cnn.safetensors"
    shutil.copy(REPO / "weights" / "cnn.safetensors", weights)
    meta = json.loads((REPO / "weights" / "cnn.json").read_text())
    meta["model_config"]["kernels"] = [3, 5, 7, 8]
    weights.with_suffix(".json").write_text(json.dumps(meta))
    result = run_script("1dcnn_deploy.py", "--weights", str(weights), "--data", str(deploy_csv), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "use odd kernel sizes such as 3, 5, 7, 9" in result.stderr
