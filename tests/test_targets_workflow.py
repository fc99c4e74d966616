"""A researcher's own targets end to end: train with --targets, test beside the baselines, deploy on torch and ONNX
Runtime; and every checkpoint written before targets existed predicts exactly as it did."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import REPO, run_script

pytestmark = pytest.mark.e2e

# spec -> (script prefix, the deploy columns after the identity columns, (target, metric, lowest acceptable value))
CASES = {
    "deception:2": ("1dcnn", ["deception", "deception_score", "p_deception_0", "p_deception_1"], ("deception", "roc_auc", 0.7)),
    "stress:3": ("attn", ["stress", "stress_score", "p_stress_0", "p_stress_1", "p_stress_2"], ("stress", "qwk", 0.3)),
    "rating:continuous": ("1dcnn", ["rating"], ("rating", "pearson_r", 0.3)),
    "extroversion,openness:continuous": ("attn", ["extroversion", "openness", "extroversion_score",
                                                  *(f"p_extroversion_{k}" for k in range(5))], ("openness", "pearson_r", 0.3)),
}


@pytest.fixture(scope="module")
def own_labels(tmp_path_factory) -> str:
    """A labels table the project never heard of: a binary, a three-level (coded 0, 1, 2) and a continuous column,
    each following one of the planted traits of data/train.csv.gz."""
    frames = pd.read_csv(REPO / "data" / "train.csv.gz", usecols=["File", "extroversion", "openness"])
    table = frames.drop_duplicates("File")
    labels = pd.DataFrame({"File": table["File"], "deception": (table["extroversion"] >= 0.5).astype(int),
                           "stress": np.digitize(table["openness"], [0.3, 0.6]), "rating": 10 + 40 * table["openness"]})
    path = tmp_path_factory.mktemp("labels") / "own_labels.csv"
    labels.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("spec", list(CASES))
def test_own_targets_train_test_and_deploy_alike_on_both_runtimes(spec, own_labels, tmp_path):
    prefix, columns, (name, metric, lowest) = CASES[spec]
    run = tmp_path / "run"
    labels = [] if spec.startswith("extroversion") else ["--labels", own_labels]
    trained = run_script(f"{prefix}_train.py", "--data", "data/train.csv.gz", *labels, "--targets", spec, "--epochs", "2",
                         "--out", str(run), "--no-progress")
    assert trained.returncode == 0, trained.stderr
    meta = json.loads((run / "best.json").read_text())
    assert [t["name"] for t in meta["targets"]] == [c for c in columns if "_" not in c]

    tested = run_script(f"{prefix}_test.py", "--weights", str(run / "best.safetensors"), "--out", str(tmp_path / "test"),
                        "--no-progress")
    assert tested.returncode == 0, tested.stderr
    results = json.loads((tmp_path / "test" / "results.json").read_text())
    assert results["model"]["per_trait"][name][metric] >= lowest
    baseline = "ridge_au_stats" if metric == "pearson_r" else "logreg_au_stats"
    assert np.isfinite(results["baselines"][baseline]["per_trait"][name][metric])
    assert f"**{name}**" in (tmp_path / "test" / "results.md").read_text()

    tables = {}
    for runtime in ("torch", "onnxruntime"):
        out = tmp_path / f"deploy_{runtime}.csv"
        deployed = run_script(f"{prefix}_deploy.py", "--weights", str(run / "best.safetensors"), "--data",
                              "data/deploy.csv.gz", "--out", str(out), "--runtime", runtime, "--no-progress",
                              env={"PERFEX_CACHE": str(tmp_path / "cache")})
        assert deployed.returncode == 0, deployed.stderr
        tables[runtime] = pd.read_csv(out)
    torch_table, onnx_table = tables["torch"], tables["onnxruntime"]
    assert list(torch_table.columns[7:]) == columns == list(onnx_table.columns[7:])
    predicted = torch_table["status"].isin(["ok", "windowed"])
    assert torch_table.loc[predicted, columns].notna().all().all()
    np.testing.assert_allclose(torch_table[columns].to_numpy(float), onnx_table[columns].to_numpy(float), rtol=1e-5,
                               atol=2e-5)  # the CSV holds 6 significant digits


def test_checkpoints_from_before_targets_predict_bit_identically(tmp_path, monkeypatch):
    """tests/fixtures/predictions_before_targets.npz holds what perfex.load_model(...).predict("data/deploy.csv.gz")
    returned at commit 4841b95 (before --targets), with OMP_NUM_THREADS=1 as the suite runs, for the shipped weights
    (their JSON given to that commit without the two fields it did not know, ``targets`` and
    ``model_config.target_levels``, both null), the round-one weights and two original .pt state dicts (made by
    test_legacy_checkpoints.original_state_dict), every numeric column at full precision. Bit for bit on a CPU of the recorded kind (oneDNN's kernels differ by
    instruction set, by a few float32 units in the last place); within 1e-6 elsewhere."""
    import perfex
    from test_legacy_checkpoints import original_state_dict

    monkeypatch.setenv("PERFEX_CACHE", str(tmp_path / "cache"))
    shipped = REPO / "tests" / "fixtures" / "weights_before_timing_score"  # the shipped weights until they were retrained with it
    paths = {"weights/cnn": shipped / "cnn.safetensors", "weights/attn": shipped / "attn.safetensors",
             "round1/cnn": REPO / "tests" / "fixtures" / "round1" / "cnn.safetensors",
             "round1/attn": REPO / "tests" / "fixtures" / "round1" / "attn.safetensors"}
    for kind in ("cnn", "attn"):
        paths[f"original/{kind}_180"] = tmp_path / f"{kind}_180.pt"
        torch.save(original_state_dict(f"legacy_{kind}"), paths[f"original/{kind}_180"])
    before = np.load(REPO / "tests" / "fixtures" / "predictions_before_targets.npz")
    same_cpu = str(before["cpu_capability"]) == torch.backends.cpu.get_cpu_capability() and torch.get_num_threads() == 1
    keys = [key for key in before.files if ":" in key]
    assert len(keys) == 10
    for key in keys:
        name, runtime = key.split(":")
        table = perfex.load_model(paths[name], runtime=runtime).predict(REPO / "data" / "deploy.csv.gz")
        now = table.drop(columns=["ID", "File", "status", "note"]).to_numpy(dtype=np.float64)
        np.testing.assert_allclose(now, before[key], rtol=0, atol=0 if same_cpu else 1e-6, err_msg=key)
