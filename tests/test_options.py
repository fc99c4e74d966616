"""The options layer, the typed checkpoint metadata and the flags each script offers."""

import json
import shutil

import pytest

from helpers import REPO, run_script
from perfex.checkpoint.io import read_config
from perfex.cli import scripts as cli
from perfex.core.errors import PerfexError
from perfex.checkpoint.metadata import SCHEMA_VERSION, CheckpointMeta
from perfex.data.options import (DataOptions, DeployConfig, RunOptions, TestConfig, TrainConfig, build_config, flatten,
                            read_run_config, save_run_config)

pytestmark = pytest.mark.e2e


def test_build_config_sends_each_flat_option_to_the_part_that_owns_it():
    config = build_config(TrainConfig, "cnn", retrain=True, data=["a.csv"], min_frames=10, batch_size=4, epochs=3,
                          weights="w.safetensors", freeze_encoder=True)
    assert config.data.min_frames == 10 and config.run.batch_size == 4 and config.train.epochs == 3
    assert config.retrain.weights == "w.safetensors" and config.retrain.freeze_encoder
    assert flatten(config)["min_frames"] == 10 and flatten(config)["freeze_encoder"] is True
    assert build_config(TrainConfig, "cnn", data=["a.csv"]).retrain is None
    with pytest.raises(PerfexError, match="unknown option"):
        build_config(DeployConfig, "cnn", data=["a.csv"], labels_typo="x")


@pytest.mark.parametrize("make, message", [
    (lambda: DataOptions(nan_policy="skip"), "--nan 'skip'"),
    (lambda: DataOptions(min_frames=0), "--min-frames 0"),
    (lambda: RunOptions(precision="fp8"), "--precision 'fp8'"),
    (lambda: build_config(TrainConfig, "cnn", val_fraction=0.6, test_fraction=0.5), "--val-fraction"),
    (lambda: build_config(TrainConfig, "cnn", retrain=True, weights="w", replay_fraction=0.3), "--replay-data"),
    (lambda: build_config(TestConfig, "cnn", subset="everything"), "--subset"),
])
def test_options_validate_themselves_with_a_message_naming_the_flag(make, message):
    with pytest.raises(PerfexError, match=message.replace("(", r"\(")):
        make()


def test_python_configs_take_each_commands_defaults_as_its_script_does():
    retrain = build_config(TrainConfig, "cnn", retrain=True, weights="w.safetensors")
    assert (retrain.train.epochs, retrain.train.lr, retrain.run.batch_size) == (30, 3e-4, 32)
    train = build_config(TrainConfig, "cnn")
    assert (train.train.epochs, train.train.lr) == (60, 1e-3)
    assert build_config(TestConfig, "cnn").run.batch_size == 64 and build_config(DeployConfig, "attn").run.batch_size == 32
    for command, parser in (("retrain", cli.train_parser("cnn", True)), ("test", cli.test_parser("cnn"))):
        given = build_config(TrainConfig if command == "retrain" else TestConfig, "cnn", retrain=command == "retrain",
                             weights="w.safetensors")
        assert parser.get_default("batch_size") == given.run.batch_size
    assert cli.train_parser("cnn", True).get_default("epochs") == 30


def test_a_declared_option_is_checked_once_naming_flag_value_and_default():
    with pytest.raises(PerfexError, match=r"^--min-confidence 1.5 must be between 0 and 1 \(default 0.8\)$"):
        DataOptions(min_confidence=1.5)
    with pytest.raises(PerfexError, match=r"^--min-frames 0 must be at least 1 \(default 40\)$"):
        DataOptions(min_frames=0)
    assert DataOptions(label_binning="quantile:0.2,0.4,0.6,0.8").label_binning.startswith("quantile:")
    assert set(cli.DATA_FLAGS) == {"labels", "label_binning", "nan_policy", "min_confidence", "min_frames", "features",
                                   "normalize", "allow_extractor_mismatch", "cache_dir"}


def test_run_config_round_trips(tmp_path):
    config = build_config(TrainConfig, "attn", retrain=True, data=["x.csv"], weights="w.safetensors", seed=3)
    save_run_config(config, tmp_path / "run.json")
    saved = read_run_config(tmp_path / "run.json")
    assert saved["family"] == "attn" and saved["retrain"] is True
    assert build_config(TrainConfig, "attn", retrain=True, **saved["options"]) == config


def test_schema_1_metadata_of_the_round_one_weights_is_migrated():
    raw = json.loads((REPO / "tests" / "fixtures" / "round1" / "cnn.json").read_text())
    meta = CheckpointMeta.from_json(raw)
    assert meta.schema_version == SCHEMA_VERSION and meta.model == "cnn" and meta.family == "cnn"
    assert meta.lineage.iteration == raw.get("iteration", meta.lineage.iteration)
    assert CheckpointMeta.from_json(json.loads(json.dumps(meta.to_json()))) == meta
    with pytest.raises(PerfexError, match="unknown field"):
        CheckpointMeta.from_json({**meta.to_json(), "surprise": 1})
    with pytest.raises(PerfexError, match="schema version 9"):
        CheckpointMeta.from_json({**meta.to_json(), "schema_version": 9})


@pytest.mark.parametrize("script, flag", [("1dcnn_deploy.py", "--labels"), ("1dcnn_deploy.py", "--seed"),
                                          ("attn_deploy.py", "--workers"), ("1dcnn_test.py", "--workers"),
                                          ("attn_test.py", "--features")])
def test_flags_that_do_nothing_in_a_script_are_not_offered(script, flag):
    result = run_script(script, flag, "1", "--out", "/nonexistent/x")
    assert result.returncode == 2 and "unrecognized arguments" in result.stderr


def test_train_refuses_weights_and_points_to_retrain():
    result = run_script("attn_train.py", "--weights", "weights/attn.safetensors")
    assert result.returncode == 2 and "attn_retrain.py --weights" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_help_shows_every_default():
    text = run_script("1dcnn_retrain.py", "--help").stdout
    for flag, value in (("--patience", "15"), ("--replay-fraction", "0.0"), ("--epochs", "30"), ("--lr", "0.0003"),
                        ("--seed", "0"), ("--min-frames", "40")):
        entry = text[text.index(f"\n  {flag} "):].split("\n  --")[1]
        assert f"(default: {value})" in " ".join(entry.split()), flag
    assert "(default: 1000)" in run_script("1dcnn_test.py", "--help").stdout


def test_config_replays_a_saved_run_and_given_flags_win(learnable_csv, tmp_path):
    first = tmp_path / "first"
    result = run_script("1dcnn_train.py", "--data", str(learnable_csv), "--out", str(first), "--epochs", "1",
                        "--batch-size", "8", "--min-frames", "95", "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    again = tmp_path / "again"
    result = run_script("1dcnn_train.py", "--config", str(first / "run_config.json"), "--out", str(again), "--seed", "5")
    assert result.returncode == 0, result.stderr[-2000:]
    replayed = read_run_config(again / "run_config.json")["options"]
    assert replayed["min_frames"] == 95 and replayed["batch_size"] == 8 and replayed["seed"] == 5
    assert replayed["data"] == [str(learnable_csv)]
    wrong = run_script("attn_retrain.py", "--config", str(first / "run_config.json"))
    assert wrong.returncode == 2 and "1dcnn_train.py" in wrong.stderr


def test_test_reuses_the_checkpoints_labels_table(tmp_path):
    """An OpenFace-trained model tested with its defaults finds its labels (it once failed: 'clips have no labels')."""
    from perfex.evaluate.evaluation import evaluate_checkpoint
    from perfex.train.loop import fit

    inputs = tmp_path / "openface"
    shutil.copytree(REPO / "data" / "openface_deploy", inputs)
    labels = tmp_path / "labels.csv"
    shutil.copy(REPO / "data" / "openface_labels.csv", labels)
    fit(build_config(TrainConfig, "cnn", data=[str(inputs)], labels=str(labels), out=str(tmp_path / "run"), epochs=1,
                     val_fraction=0.5, test_fraction=0.0, device="cpu", progress=False))
    meta = read_config(tmp_path / "run" / "best.safetensors")
    assert meta.data.labels == str(labels)
    results = evaluate_checkpoint(build_config(TestConfig, "cnn", weights=str(tmp_path / "run"), out=str(tmp_path / "test"),
                                               subset="val", n_boot=10, device="cpu", progress=False))
    assert results["n_test_clips"] > 0


def test_deploy_imports_nothing_it_does_not_use_and_help_needs_no_torch(tmp_path):
    import subprocess
    import sys

    unused = "sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'matplotlib', 'pandas'})"
    probe = f"import sys, perfex.infer.deploy; print({unused})"
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True).stdout.strip() == "[]"
    out = tmp_path / "out.csv"
    probe = ("import sys; from perfex.infer.deploy import deploy; from perfex.data.options import DeployConfig, build_config\n"
             "for i, data in enumerate(['data/deploy.csv.gz', 'data/openface_deploy']):\n"
             "    deploy(build_config(DeployConfig, 'cnn', data=[data], weights='weights/cnn.safetensors', "
             f"out=r'{out}' + str(i), progress=False))\n"
             f"print({unused})")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr  # not even while reading and writing
    probe = "import sys; from perfex.cli import scripts as cli; cli.deploy_parser('cnn'); cli.train_parser('attn', True); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True).stdout.strip() == "False"
