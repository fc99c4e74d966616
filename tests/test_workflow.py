"""End to end on generated data: train beats the majority baseline, retrain lineage, resume, test report, deploy."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import run_script
from models.registry import families, script_prefix
from perfex.checkpoint.io import file_sha256, load_checkpoint, read_config
from perfex.infer.clip_rows import CLIP_COLUMNS
from perfex.infer.deploy import deploy
from perfex.evaluate.evaluation import evaluate_checkpoint
from perfex.data.options import DeployConfig, TestConfig, TrainConfig, build_config
from perfex.core.schema import TRAITS
from perfex.train.loop import fit

pytestmark = pytest.mark.e2e


def train(model, data, out, retrain=False, on_epoch_end=None, **overrides):
    settings = dict(epochs=25, patience=25, batch_size=16, lr=2e-3, device="cpu", progress=False, seed=0,
                    timing_score=False)  # the timing score has its own tests (test_wide, test_trait_selection)
    settings.update(overrides)
    fit(build_config(TrainConfig, model, retrain=retrain, data=[str(data)], out=str(out), **settings), on_epoch_end)
    return out / "best.safetensors"


def run_test(config_kwargs, family):
    return evaluate_checkpoint(build_config(TestConfig, family, **config_kwargs))


@pytest.fixture(scope="module")
def cnn_run(learnable_csv, tmp_path_factory):
    return train("cnn", learnable_csv, tmp_path_factory.mktemp("runs") / "cnn")


@pytest.mark.parametrize("model", ["cnn", "attn"])
def test_training_beats_majority_baseline_on_held_out_videos(model, learnable_csv, cnn_run, tmp_path):
    weights = cnn_run if model == "cnn" else train("attn", learnable_csv, tmp_path / "attn", epochs=12, patience=12)
    results = run_test(dict(weights=str(weights), out=str(tmp_path / "test"), n_boot=200, progress=False), model)
    model_accuracy = results["model"]["mean"]["accuracy"]
    majority = results["baselines"]["majority"]["mean"]["accuracy"]
    assert model_accuracy > majority + 0.05, (model_accuracy, majority)
    assert results["model"]["accuracy_ci95"][0] <= model_accuracy <= results["model"]["accuracy_ci95"][1]
    assert "test split" in results["evaluated_on"]
    # the report names the model and all three baselines, and the plots exist
    markdown = (tmp_path / "test" / "results.md").read_text()
    for name in ("majority", "train_mean", "logreg_au_stats"):
        assert name in markdown and name in results["baselines"]
    assert (tmp_path / "test" / "confusion_matrices.png").stat().st_size > 1000
    assert (tmp_path / "test" / "reliability.png").stat().st_size > 1000 and "calibration" in results
    assert "QWK" in markdown and "CCC" in markdown
    predictions = pd.read_csv(tmp_path / "test" / "predictions.csv")
    assert len(predictions) == results["n_test_clips"]


def test_run_directory_holds_checkpoints_metrics_curves_and_split(cnn_run):
    run = cnn_run.parent
    for name in ("best.safetensors", "best.json", "last.safetensors", "metrics.csv", "training_curves.png", "split.json"):
        assert (run / name).exists(), name
    meta = read_config(cnn_run)
    assert meta.model == "cnn" and meta.lineage.iteration == 1 and meta.lineage.parent is None
    assert len(meta.normalization["mean"]) == 17 and meta.label_binning == "grid"
    # one temperature per trait, fitted on validation (lower NLL there), stored with the weights and applied on load
    assert len(meta.temperatures) == 5 and meta.metrics["val_nll_calibrated"] <= meta.metrics["val_nll_uncalibrated"]
    model, _ = load_checkpoint(cnn_run)
    assert model.temperature.tolist() == pytest.approx(meta.temperatures)
    history = pd.read_csv(run / "metrics.csv")
    assert list(history["epoch"]) == list(range(0, len(history)))  # epoch 0: the logistic-regression start
    assert np.isnan(history["train_loss"].iloc[0]) and history["train_loss"].iloc[-1] < history["train_loss"].iloc[1]
    split = json.loads((run / "split.json").read_text())
    assert not set(split["train"]) & set(split["test"]) and not set(split["val"]) & set(split["test"])


def test_retrain_records_parent_and_iteration(cnn_run, learnable_csv, tmp_path):
    train("cnn", learnable_csv, tmp_path / "r1", retrain=True, weights=str(cnn_run), epochs=2,
          replay_data=[str(learnable_csv)], replay_fraction=0.3)
    meta1 = read_config(tmp_path / "r1" / "last.safetensors")
    assert meta1.lineage.iteration == 2 and meta1.lineage.parent["sha256"] == file_sha256(cnn_run)
    train("cnn", learnable_csv, tmp_path / "r2", retrain=True, weights=str(tmp_path / "r1" / "last.safetensors"), epochs=1,
          freeze_encoder=True)
    meta2 = read_config(tmp_path / "r2" / "last.safetensors")
    assert meta2.lineage.iteration == 3 and meta2.lineage.parent["sha256"] == file_sha256(tmp_path / "r1" / "last.safetensors")
    # the frozen encoder did not move; only the head changed
    before, _ = load_checkpoint(tmp_path / "r1" / "last.safetensors")
    after, _ = load_checkpoint(tmp_path / "r2" / "last.safetensors")
    for (name, a), b in zip(before.state_dict().items(), after.state_dict().values()):
        assert name.startswith(("head.", "statistics.linear.")) or np.array_equal(a.numpy(), b.numpy()), name


class Interrupt(Exception):
    pass


def interrupt_after(epoch_to_stop):
    def hook(epoch, row):
        if epoch == epoch_to_stop:
            raise Interrupt
    return hook


@pytest.mark.parametrize("select", ["loss", "qwk"])  # qwk: a resumed run recomputes the start's margin
def test_resume_ends_exactly_like_an_uninterrupted_run(learnable_csv, tmp_path, select):
    """Interrupted before and after the best epoch, a resumed run stops at the same epoch with the same weights."""
    settings = dict(epochs=9, patience=2, lr=3e-3, select=select)
    straight = train("cnn", learnable_csv, tmp_path / "straight", **settings).parent
    history = pd.read_csv(straight / "metrics.csv")
    best = read_config(straight / "best.safetensors").epoch
    stops = sorted({max(best - 1, 1), min(best + 1, len(history) - 1)})
    for stop in stops:
        run = tmp_path / f"stopped{stop}"
        with pytest.raises(Interrupt):
            train("cnn", learnable_csv, run, on_epoch_end=interrupt_after(stop), **settings)
        train("cnn", learnable_csv, run, resume=True, **settings)
        resumed = pd.read_csv(run / "metrics.csv")
        assert resumed["epoch"].tolist() == history["epoch"].tolist(), stop
        np.testing.assert_allclose(resumed["val_loss"], history["val_loss"], rtol=1e-5)
        for name in ("last.safetensors", "best.safetensors"):
            a = load_checkpoint(run / name)[0].state_dict()
            b = load_checkpoint(straight / name)[0].state_dict()
            for key, value in b.items():
                np.testing.assert_allclose(a[key].numpy(), value.numpy(), atol=1e-6, err_msg=f"{stop} {name} {key}")


def test_deploy_writes_every_clip_with_a_status(cnn_run, deploy_csv, tmp_path):
    out = tmp_path / "pred.csv"
    summary = deploy(build_config(DeployConfig, "cnn", weights=str(cnn_run), data=[str(deploy_csv)], out=str(out),
                                  per_frame=str(tmp_path / "rows.csv"), progress=False))
    table = pd.read_csv(out)
    assert list(table.columns) == CLIP_COLUMNS
    assert len(table) == 10 and summary["clips_in_input"] == 10
    status = dict(zip(table["ID"], table["status"]))
    assert [status[i] for i in (100, 101)] == ["too_short", "too_short"]
    assert [status[i] for i in (200, 201)] == ["windowed", "windowed"]
    assert all(status[i] == "ok" for i in range(6))
    ok = table[table["status"] != "too_short"]
    probs = ok[[c for c in table.columns if c.startswith("p_")]].to_numpy().reshape(len(ok), 5, 5)
    np.testing.assert_allclose(probs.sum(axis=2), 1, atol=1e-4)
    np.testing.assert_allclose(ok[list(TRAITS)].to_numpy(), probs.argmax(axis=2) / 4)
    assert table[table["status"] == "too_short"][list(TRAITS)].isna().all().all()
    rows = pd.read_csv(tmp_path / "rows.csv")
    source = pd.read_csv(deploy_csv)
    assert len(rows) == len(source)
    first = rows[rows["ID"] == 0]["extroversion"].unique()
    assert first.tolist() == [table.loc[table["ID"] == 0, "extroversion"].item()]


def test_deploy_refuses_to_overwrite_without_force_and_predicts_short_on_request(cnn_run, deploy_csv, tmp_path):
    out = tmp_path / "pred.csv"
    out.write_text("precious\n")
    result = run_script("1dcnn_deploy.py", "--weights", str(cnn_run), "--data", str(deploy_csv), "--out", str(out))
    assert result.returncode == 2 and "--force" in result.stderr and out.read_text() == "precious\n"
    result = run_script("1dcnn_deploy.py", "--weights", str(cnn_run), "--data", str(deploy_csv), "--out", str(out),
                        "--force", "--predict-short", "--no-progress")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert (table["status"] == "short_predicted").sum() == 2 and table["extroversion"].notna().all()
    assert not list(tmp_path.glob(".*.tmp"))


def test_deploy_failure_leaves_no_partial_output(tmp_path, deploy_csv):
    out = tmp_path / "pred.csv"
    result = run_script("1dcnn_deploy.py", "--weights", str(tmp_path / "missing.safetensors"), "--data", str(deploy_csv), "--out", str(out))
    assert result.returncode == 2 and "not found" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_corrupted_or_mismatched_checkpoints_fail_clearly(cnn_run, deploy_csv, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(cnn_run.read_bytes()[:200])
    broken.with_suffix(".json").write_text(cnn_run.with_suffix(".json").read_text())
    result = run_script("1dcnn_deploy.py", "--weights", str(broken), "--data", str(deploy_csv), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "corrupted" in result.stderr and "Traceback" not in result.stderr
    result = run_script("attn_deploy.py", "--weights", str(cnn_run), "--data", str(deploy_csv), "--out", str(tmp_path / "o.csv"))
    assert result.returncode == 2 and "1dcnn_*.py" in result.stderr


def test_sharded_deploy_and_merge_equal_single_process(cnn_run, deploy_csv, tmp_path):
    base = ["1dcnn_deploy.py", "--weights", str(cnn_run), "--data", str(deploy_csv), "--no-progress", "--runtime", "torch"]
    assert run_script(*base, "--out", str(tmp_path / "all.csv")).returncode == 0
    for k in range(3):
        assert run_script(*base, "--shard", f"{k}/3", "--out", str(tmp_path / f"part{k}.csv")).returncode == 0
    incomplete = run_script("1dcnn_deploy.py", "--merge", str(tmp_path / "part0.csv"), str(tmp_path / "part2.csv"), "--out", str(tmp_path / "m.csv"))
    assert incomplete.returncode == 2 and "exactly once" in incomplete.stderr
    merged = run_script("1dcnn_deploy.py", "--merge", *(str(tmp_path / f"part{k}.csv") for k in range(3)), "--out", str(tmp_path / "merged.csv"))
    assert merged.returncode == 0, merged.stderr
    single, joined = pd.read_csv(tmp_path / "all.csv"), pd.read_csv(tmp_path / "merged.csv")
    assert list(single.columns) == list(joined.columns)
    pd.testing.assert_frame_equal(single, joined, check_exact=False, atol=1e-5)


def test_every_script_has_help():
    scripts = [f"{script_prefix(model)}_{name}.py" for model in families() for name in ("train", "retrain", "test", "deploy")]
    for script in [*scripts, "data_augmentation.py"]:
        result = run_script(script, "--help")
        assert result.returncode == 0 and "--data" in result.stdout and "--out" in result.stdout, script


def test_openface_input_errors_exit_with_status_2_not_an_abort(tmp_path):
    """torch and pyarrow's thread pools once made the interpreter abort (status 134) after a clean error."""
    result = run_script("1dcnn_train.py", "--data", "data/openface_deploy", "--labels", "data/openface_labels.csv",
                        "--out", str(tmp_path / "run"), "--epochs", "1")
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "source video(s)" in result.stderr and "--test-fraction 0" in result.stderr
    assert "terminate called" not in result.stderr
    ok = run_script("1dcnn_deploy.py", "--data", "data/openface_deploy", "--out", str(tmp_path / "of.csv"), "--no-progress")
    assert ok.returncode == 0 and "6 of 6 clips written" in ok.stdout


def test_retrained_checkpoint_reports_what_retraining_gained_and_lost(cnn_run, learnable_csv, tmp_path):
    """Tested with its defaults, a retrain on other data reports its own split and the parent's test split beside the
    parent's figures; testing it on the parent's data finds the parent's split through the lineage."""
    from perfex.data.synth import generate_perfex, write_table

    study = tmp_path / "study.csv"
    write_table(generate_perfex(60, seed=21, spread=3.0, min_frames=90, max_frames=150, id_start=5000), study)
    retrained = train("cnn", study, tmp_path / "it2", retrain=True, weights=str(cnn_run), epochs=2)
    results = run_test(dict(weights=str(retrained), out=str(tmp_path / "t"), n_boot=20, progress=False), "cnn")
    check = results["forgetting"]
    assert "parent's test split" in check["evaluated_on"] and check["n_clips"] > 0
    parent_alone = run_test(dict(weights=str(cnn_run), out=str(tmp_path / "p"), n_boot=20, progress=False), "cnn")
    assert check["parent"]["accuracy"] == pytest.approx(parent_alone["model"]["mean"]["accuracy"])
    assert "Did retraining forget?" in (tmp_path / "t" / "results.md").read_text()
    on_parent_data = run_script("1dcnn_test.py", "--weights", str(retrained), "--data", str(learnable_csv),
                                "--out", str(tmp_path / "t2"), "--bootstrap", "20", "--no-progress")
    assert on_parent_data.returncode == 0, on_parent_data.stderr[-1500:]
    assert "test split" in on_parent_data.stdout


def test_explanations_never_change_predictions_and_importance_joins_the_report(cnn_run, deploy_csv, tmp_path):
    plain, explained = tmp_path / "plain.csv", tmp_path / "explained.csv"
    base = ["1dcnn_deploy.py", "--weights", str(cnn_run), "--data", str(deploy_csv), "--no-progress", "--runtime", "torch"]
    assert run_script(*base, "--out", str(plain)).returncode == 0
    result = run_script(*base, "--out", str(explained), "--explain", str(tmp_path / "ex"), "--explain-plots", "2")
    assert result.returncode == 0, result.stderr[-1500:]
    assert plain.read_bytes() == explained.read_bytes()
    assert (tmp_path / "ex" / "explanations.npz").exists() and len(list((tmp_path / "ex").glob("*.png"))) == 2
    refused = run_script(*base, "--out", str(tmp_path / "s.csv"), "--shard", "0/2", "--explain", str(tmp_path / "ex2"))
    assert refused.returncode == 2 and "--explain with --shard" in refused.stderr
    results = run_test(dict(weights=str(cnn_run), out=str(tmp_path / "t"), n_boot=20, progress=False, importance=True), "cnn")
    written = (tmp_path / "t" / "importance.md").read_text()
    assert written.strip() in results["markdown"] and (tmp_path / "t" / "importance.png").stat().st_size > 1000


def test_continuous_targets_train_test_and_deploy(tmp_path):
    """--target continuous: one score per trait from the raw labels; test reports score metrics beside ridge regression;
    deploy writes the scores and marks the levels as rounded scores."""
    from perfex.data.synth import generate_perfex, write_table

    frame = generate_perfex(120, seed=31, spread=3.0, min_frames=60, max_frames=90)
    rng = np.random.default_rng(0)
    for trait in TRAITS:  # raw, off-grid scores, as ChaLearn First Impressions gives them
        frame[trait] = np.clip(frame[trait] + frame["ID"].map(dict(zip(frame["ID"].unique(), rng.normal(0, 0.05, 120)))), 0, 1)
    data = tmp_path / "continuous.csv"
    write_table(frame, data)
    weights = train("cnn", data, tmp_path / "run", target="continuous", epochs=4)
    meta = read_config(weights)
    assert meta.model_config["output"] == "score" and meta.temperatures is None
    results = run_test(dict(weights=str(weights), out=str(tmp_path / "t"), n_boot=20, progress=False), "cnn")
    assert "ridge_au_stats" in results["baselines"] and np.isfinite(results["model"]["mean"]["rmse"])
    out = tmp_path / "pred.csv"
    summary = deploy(build_config(DeployConfig, "cnn", weights=str(weights), data=[str(data)], out=str(out), progress=False))
    table = pd.read_csv(out)
    assert summary["clips_written"] == 120 and table["note"].str.startswith("continuous model").all()
    scores = table[[f"{t}_score" for t in TRAITS]].to_numpy()
    assert ((scores > 0) & (scores < 1)).all() and len(np.unique(scores.round(4))) > 20
    np.testing.assert_allclose(table[list(TRAITS)].to_numpy(), np.rint(scores * 4) / 4)


def test_read_ahead_keeps_order_raises_where_the_reader_failed_and_lets_go_of_its_thread():
    import threading

    from perfex.infer.deploy_input import read_ahead

    def items():
        yield from range(5)
        raise ValueError("broken file")

    seen = []
    with pytest.raises(ValueError, match="broken file"):
        for item in read_ahead(items()):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]
    started = threading.Event()

    def watched():
        started.set()
        yield from range(1000)

    reader = read_ahead(watched())
    assert started.wait(timeout=5)  # reading began before anyone asked for an item
    assert next(reader) == 0
    reader.close()  # the consumer stops early: the producer thread must not stay blocked
    for thread in threading.enumerate():
        if thread.name == "perfex-read-ahead":
            thread.join(timeout=2)
            assert not thread.is_alive()
