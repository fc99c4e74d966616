"""Deploy's two runtimes: ONNX Runtime (the CPU default) gives torch's predictions, without importing torch."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from models import create_model, families
from perfex.checkpoint.io import read_config
from perfex.infer.deploy import deploy
from perfex.infer.onnx_engine import export_path
from perfex.infer.onnx_export import export_probabilities
from perfex.data.options import DeployConfig, build_config
from perfex.core.schema import TRAITS

from helpers import REPO

pytestmark = pytest.mark.e2e

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def run_deploy(family, data, out, **options):
    config = build_config(DeployConfig, family, weights=str(REPO / "weights" / f"{family}.safetensors"), data=[str(data)],
                          out=str(out), progress=False, **options)
    return deploy(config), pd.read_csv(out)


@pytest.mark.parametrize("family", families())
def test_onnxruntime_deploy_equals_torch_on_every_clip(family, deploy_csv, tmp_path):
    """Same statuses, windows and levels; probabilities within float error (windowed and too-short clips included)."""
    on_torch, expected = run_deploy(family, deploy_csv, tmp_path / "torch.csv", runtime="torch")
    on_onnx, got = run_deploy(family, deploy_csv, tmp_path / "onnx.csv", runtime="auto")
    assert (on_torch["runtime"], on_onnx["runtime"]) == ("torch", "onnxruntime")
    assert {"windowed", "too_short"} <= set(got["status"])
    pd.testing.assert_frame_equal(got.drop(columns=[c for c in got if c.startswith(("p_", *TRAITS))]),
                                  expected.drop(columns=[c for c in got if c.startswith(("p_", *TRAITS))]))
    probs = [c for c in got if c.startswith("p_")]
    np.testing.assert_allclose(got[probs].to_numpy(), expected[probs].to_numpy(), atol=2e-5)
    assert got[list(TRAITS)].equals(expected[list(TRAITS)])


@pytest.mark.parametrize("output", ["softmax", "corn", "score"])
@pytest.mark.parametrize("family", families())
def test_the_exported_graph_decodes_levels_like_the_model(family, output, tmp_path):
    """Temperatures and every output kind are inside the graph, for any batch size and clip length."""
    import onnxruntime

    torch.manual_seed(0)
    model = create_model(family, output=output, **({"n_outputs": 5} if output == "score" else {})).eval()
    model.set_temperatures(np.linspace(0.5, 2.0, 5))
    session = onnxruntime.InferenceSession(str(export_probabilities(model, tmp_path / "m.onnx")))
    names = {i.name for i in session.get_inputs()}
    for batch, frames in [(1, 37), (5, 260)]:
        x, lengths = torch.randn(batch, frames, 17), torch.randint(1, frames + 1, (batch,))
        lengths[0] = frames
        shared = torch.arange(frames, dtype=torch.float32)[None] / 30
        per_clip = shared * (torch.arange(frames)[None] < lengths[:, None])
        with torch.no_grad():
            expected = model.level_probabilities(model(x, lengths, per_clip)).numpy()
        for times in (per_clip, shared):
            feed = {k: v.numpy() for k, v in {"x": x, "lengths": lengths, "times": times}.items() if k in names}
            np.testing.assert_allclose(session.run(None, feed)[0], expected, atol=1e-5)


def test_runtime_choice_and_refusals(deploy_csv, tmp_path):
    """--explain and bf16 need torch: auto takes torch for them, an explicit onnxruntime is refused in one line. (The
    explained weights carry no timing-score kernels, which make explanations about 3.5x slower: docs/performance.md.)"""
    without_kernels = REPO / "tests" / "fixtures" / "weights_before_timing_score" / "cnn.safetensors"
    summary = deploy(build_config(DeployConfig, "cnn", weights=str(without_kernels), data=[str(deploy_csv)],
                                  out=str(tmp_path / "e.csv"), progress=False, explain=str(tmp_path / "ex"), explain_plots=0))
    assert summary["runtime"] == "torch"
    done = subprocess.run([sys.executable, "1dcnn_deploy.py", "--data", str(deploy_csv), "--out", str(tmp_path / "x.csv"),
                           "--runtime", "onnxruntime", "--explain", str(tmp_path / "ex2")],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--explain needs torch" in done.stderr and "--runtime torch" in done.stderr


def test_export_is_cached_by_content_and_the_cached_path_never_imports_torch(deploy_csv, tmp_path):
    weights = REPO / "weights" / "cnn.safetensors"
    run_deploy("cnn", deploy_csv, tmp_path / "first.csv")
    cached = export_path(weights)
    stamp = cached.stat().st_mtime_ns
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 1]))
    copy.with_suffix(".json").write_bytes(weights.with_suffix(".json").read_bytes())
    assert export_path(copy) != cached  # other weights, other export
    probe = ("import sys; from perfex.infer.deploy import deploy; from perfex.data.options import DeployConfig, build_config\n"
             f"s = deploy(build_config(DeployConfig, 'cnn', weights=r'{weights}', data=[r'{deploy_csv}'], "
             f"out=r'{tmp_path / 'second.csv'}', progress=False))\n"
             "print(s['runtime'], 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.split() == ["onnxruntime", "False"], done.stderr
    assert cached.stat().st_mtime_ns == stamp


def test_a_failed_export_falls_back_to_torch_or_fails_in_one_line(deploy_csv, tmp_path):
    """auto: a one-line notice and the torch runtime; an explicit --runtime onnxruntime: exit status 2."""
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    env = {**os.environ, "PERFEX_CACHE": str(blocked)}
    base = [sys.executable, "1dcnn_deploy.py", "--data", str(deploy_csv), "--no-progress"]
    done = subprocess.run([*base, "--out", str(tmp_path / "a.csv")], cwd=REPO, capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "[torch]" in done.stdout
    assert "notice: the export cache" in done.stderr and "running on torch instead" in done.stderr
    done = subprocess.run([*base, "--out", str(tmp_path / "b.csv"), "--runtime", "onnxruntime"], cwd=REPO,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "set PERFEX_CACHE" in done.stderr


def test_reasons_against_onnxruntime_are_checked_in_order_and_only_as_needed(tmp_path, monkeypatch):
    """Original .pt weights have no JSON beside them: the exporter check (which hashes both) must not run for them."""
    import importlib.util

    from perfex.infer.onnx_engine import why_not_onnxruntime

    weights = tmp_path / "cnn_180.pt"
    weights.write_bytes(b"not read")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # neither onnxruntime nor onnx installed
    config = build_config(DeployConfig, "cnn", weights=str(weights))
    assert why_not_onnxruntime(config, weights, None) == "original .pt weights"
    shipped = REPO / "weights" / "cnn.safetensors"
    reason = why_not_onnxruntime(build_config(DeployConfig, "cnn"), shipped, read_config(shipped))
    assert reason == "onnxruntime is not installed"
