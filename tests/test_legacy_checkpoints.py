"""Original PerFeX .pt state dicts: recognised, run through the batched deploy path exactly, converted losslessly."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import run_script
from models.legacy import LEGACY_MODELS, legacy_state_dict_shapes
from models.registry import family_of, script_prefix
from perfex.data.readers import load_clips
import torch.nn.functional as F
from perfex.core.schema import TRAITS

pytestmark = pytest.mark.e2e

KINDS = {kind: (script_prefix(kind), f"{family_of(kind)}_180.pt") for kind in LEGACY_MODELS}  # kind -> (scripts, file)


def original_state_dict(kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) * 0.1 for key, shape in legacy_state_dict_shapes(kind).items()}


@pytest.fixture(scope="module", params=list(KINDS))
def original(request, tmp_path_factory):
    kind = request.param
    path = tmp_path_factory.mktemp(kind) / KINDS[kind][1]
    torch.save(original_state_dict(kind), path)
    return kind, path


def batch_one_reference(model, clips) -> np.ndarray:
    """The original regime: one clip at a time, zero-padded to 700 frames."""
    out = []
    for i in range(len(clips)):
        x = torch.zeros(1, 700, 17)
        frames = torch.from_numpy(clips.clip(i))
        x[0, : len(frames)] = frames
        with torch.no_grad():
            out.append(F.softmax(model(x, torch.tensor([len(frames)])).view(-1, 5, 5), dim=-1).numpy()[0])
    return np.stack(out)


def test_deploy_runs_original_weights_batched_with_identical_outputs(original, deploy_csv, tmp_path):
    kind, path = original
    prefix = KINDS[kind][0]
    out = tmp_path / "pred.csv"
    result = run_script(f"{prefix}_deploy.py", "--weights", str(path), "--data", str(deploy_csv), "--out", str(out),
                        "--batch-size", "4", "--no-progress")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert len(table) == 10
    from perfex.checkpoint.io import load_checkpoint

    model, meta = load_checkpoint(path)
    assert meta.model == kind and meta.legacy is True
    clips = load_clips([deploy_csv])
    ok = np.flatnonzero(table["status"].to_numpy() == "ok")
    reference = batch_one_reference(model, clips.subset(ok))
    got = table.iloc[ok][[f"p_{t}_{level}" for t in TRAITS for level in range(5)]].to_numpy().reshape(len(ok), 5, 5)
    np.testing.assert_allclose(got, reference, atol=2e-5)

    converted_dir = tmp_path / "converted"
    result = run_script("-m", "perfex.checkpoint.convert_legacy", str(path), str(converted_dir))
    assert result.returncode == 0, result.stderr
    converted = converted_dir / (path.stem + ".safetensors")
    config = __import__("json").loads(converted.with_suffix(".json").read_text())
    assert config["legacy"] is True and config["model"] == kind and len(config["source"]["sha256"]) == 64
    out2 = tmp_path / "pred_converted.csv"
    result = run_script(f"{prefix}_deploy.py", "--weights", str(converted), "--data", str(deploy_csv), "--out", str(out2),
                        "--batch-size", "4", "--no-progress")
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(table, pd.read_csv(out2))


def test_the_other_family_script_refuses_original_weights(original, deploy_csv, tmp_path):
    kind, path = original
    other = "attn" if kind == "legacy_cnn" else "1dcnn"
    result = run_script(f"{other}_deploy.py", "--weights", str(path), "--data", str(deploy_csv), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and f"{KINDS[kind][0]}_*.py" in result.stderr


@pytest.mark.parametrize("damage", ["missing", "misshaped"])
def test_damaged_original_state_dict_is_refused(damage, deploy_csv, tmp_path):
    state = original_state_dict("legacy_cnn")
    if damage == "missing":
        del state["conv2_1.weight"]
    else:
        state["conv2_1.weight"] = torch.zeros(3, 3, 3)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    result = run_script("1dcnn_deploy.py", "--weights", str(path), "--data", str(deploy_csv), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "conv2_1.weight" in result.stderr and "Traceback" not in result.stderr


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_is_not_a_plain_state_dict_is_refused(deploy_csv, tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"conv1_1.weight": Payload()}, handle)
    result = run_script("1dcnn_deploy.py", "--weights", str(path), "--data", str(deploy_csv), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "not a plain PyTorch state dict" in result.stderr
    assert "this must never run" not in result.stdout
    not_a_dict = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], not_a_dict)
    result = run_script("-m", "perfex.checkpoint.convert_legacy", str(not_a_dict), str(tmp_path / "c"))
    assert result.returncode == 2 and "not a state dict" in result.stderr


def test_legacy_hybrid_first_branch_never_sees_the_clip():
    from models.legacy import build_legacy_model

    state = original_state_dict("legacy_attn", seed=3)
    clips = torch.randn(2, 120, 17).abs() * torch.tensor([[[1.0]], [[4.0]]])
    lengths = torch.tensor([120, 60])
    with torch.no_grad():
        full = build_legacy_model(state)(clips, lengths)
        assert (full[0] - full[1]).abs().max() > 1e-4  # the clips do change the output ...
        state["linear_layer_stack.0.weight"][:, 256:] = 0  # ... but cut the convolutional branch off the head
        branch_a_only = build_legacy_model(state)(clips, lengths)
    torch.testing.assert_close(branch_a_only[0], branch_a_only[1], atol=0, rtol=0)  # and nothing of the clip is left


def test_legacy_cnn_pools_over_all_700_padded_positions_not_the_real_frames():
    from models.legacy import CNN_KERNELS, build_legacy_model

    model = build_legacy_model(original_state_dict("legacy_cnn", seed=4))
    frames = torch.randn(1, 90, 17).abs()
    padded = torch.zeros(1, 700, 17)
    padded[0, :90] = frames[0]
    with torch.no_grad():
        pooled = model.pooled_features(frames, torch.tensor([90]))
        maps = torch.cat([torch.relu(getattr(model, f"conv{b}_2")(torch.relu(getattr(model, f"conv{b}_1")(padded.transpose(1, 2)))))
                          for b in range(1, len(CNN_KERNELS) + 1)], dim=1)
    torch.testing.assert_close(pooled, maps.mean(dim=2), atol=1e-6, rtol=0)
    real_only = maps[:, :, :90].mean(dim=2)
    assert (pooled - real_only).abs().max() > 1e-3
