"""Smoke test of the benchmark's pieces on a few clips: the keys its JSON carries and the bf16 verdict rule."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("perfex_bench", REPO / "bench" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def clips():
    from perfex.data.readers import load_clips

    return load_clips([REPO / "data" / "deploy.csv.gz"]).subset(np.arange(8))


@pytest.fixture(scope="module")
def cnn():
    from perfex.checkpoint.io import load_checkpoint

    return load_checkpoint(REPO / "weights" / "cnn.safetensors", family="cnn")[0]


def test_precision_comparison_reports_accuracy_cost_and_speed(bench, clips, cnn):
    result = bench.precision_comparison(cnn, clips)
    assert set(result) == {"clips", "max_abs_diff", "levels_changed", "agree_share", "fp32_seconds", "bf16_seconds", "speedup"}
    assert result["clips"] == int((clips.lengths >= 40).sum())
    assert 0 < result["max_abs_diff"] < 0.1
    assert result["agree_share"] == 1 - result["levels_changed"] / result["clips"]


def test_bf16_verdict_needs_agreement_and_speed(bench):
    agree = {"agree_share": 0.996, "speedup": 1.5}
    assert bench.bf16_verdict([agree, {"agree_share": 1.0, "speedup": 2.0}])[0]
    ok, value, _ = bench.bf16_verdict([agree, {"agree_share": 0.994, "speedup": 2.0}])
    assert not ok and value == "no (levels agree on 99.40% of clips, need 99.5%)"
    assert not bench.bf16_verdict([{"agree_share": 1.0, "speedup": 0.9}])[0]


def test_cold_start_and_failing_process(bench):
    result = bench.cold_start("1dcnn_deploy.py", repeats=2)
    assert set(result) == {"first_seconds", "median_seconds", "seconds"} and len(result["seconds"]) == 2
    with pytest.raises(RuntimeError, match="exited with 3"):
        bench.run_process([sys.executable, "-c", "import sys; sys.exit(3)"])


def test_batch1_inference(bench, clips, cnn):
    result = bench.batch1_inference(cnn, clips, 4)
    assert result["clips"] == 4 and result["padded_to"] == 700 and result["clips_per_s"] > 0


def test_onnx_runtime_matches_eager(clips, cnn, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, str(REPO / "bench"))
    from compilers import onnx_model

    from perfex.infer.predict import predict_probs

    eager, _ = predict_probs(cnn, clips)
    exported, _ = predict_probs(onnx_model(cnn, tmp_path), clips)
    assert np.abs(eager - exported).max() < 1e-4
