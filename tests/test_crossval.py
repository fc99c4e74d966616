"""K-fold cross-validation (train --folds): folds by source video, out-of-fold predictions, the report, the test script."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import run_script
from perfex.cli.scripts import run_test
from perfex.core.clips import ClipSet
from perfex.evaluate.crossval import assign_folds, check_cv_dir, fold_manifest, run_crossval
from perfex.evaluate.crossval_report import HEADLINE, merge_cv_runs
from perfex.core.errors import PerfexError
from perfex.core.metrics import BASELINE_NAMES
from perfex.data.options import TrainConfig, build_config
from perfex.core.schema import TRAITS
from perfex.data.splits import group_keys, source_video, split_indices

pytestmark = pytest.mark.e2e

FOLDS = 3
TINY = ("--folds", str(FOLDS), "--epochs", "1", "--max-frames", "32", "--batch-size", "16", "--threads", "1", "--no-progress")


@pytest.fixture(scope="module")
def cv_csv(tmp_path_factory):
    """30 short labelled clips of 13 source videos."""
    from perfex.data.synth import generate_perfex, write_table

    path = tmp_path_factory.mktemp("cv") / "small.csv.gz"
    write_table(generate_perfex(30, seed=4, min_frames=50, max_frames=80, clips_per_person=(1, 3)), path)
    return path


@pytest.fixture(scope="module")
def clip_files(cv_csv):
    """The File of every clip ID of the data."""
    return pd.read_csv(cv_csv).groupby("ID")["File"].first()


@pytest.fixture(scope="module")
def cv_runs(cv_csv, tmp_path_factory):
    """The cnn (its train script, as a user runs it) and the attn (in this process, faster) cross-validated with the
    same --folds and --seed: family -> (run directory, log)."""
    root = tmp_path_factory.mktemp("cv_runs")
    result = run_script("1dcnn_train.py", "--data", str(cv_csv), "--out", str(root / "cnn"), *TINY)
    assert result.returncode == 0, result.stderr
    run_crossval(tiny_config("attn", cv_csv, root / "attn"))
    return {"cnn": (root / "cnn", result.stdout), "attn": (root / "attn", "")}


def tiny_config(family, data, out, **overrides):
    settings = dict(folds=FOLDS, epochs=1, max_frames=32, batch_size=16, threads=1, progress=False, device="cpu")
    return build_config(TrainConfig, family, data=[str(data)], out=str(out), **{**settings, **overrides})


def read(run, name):
    return json.loads((run / name).read_text())


def make_clips(files, levels, augmentation=None, source_ids=None):
    n = len(files)
    return ClipSet(ids=np.arange(n), files=np.array(files, dtype=object), offsets=np.arange(n + 1) * 2,
                   features=np.zeros((2 * n, 17), np.float32), times=np.zeros(2 * n, np.float32), levels=np.asarray(levels),
                   augmentation=None if augmentation is None else np.array(augmentation, dtype=object),
                   source_ids=None if source_ids is None else np.array(source_ids))


def mean_accuracy(table, column):
    return np.mean([(table[f"{trait}_{column}"] == table[f"{trait}_true"]).mean() for trait in TRAITS])


def test_folds_keep_source_videos_whole_and_cover_every_clip_once(cv_runs, clip_files):
    run, log = cv_runs["cnn"]
    folds = read(run, "folds.json")["folds"]
    ids = [i for fold in folds for i in fold["clips"]]
    assert sorted(ids) == sorted(clip_files.index) and len(folds) == FOLDS and all(fold["clips"] for fold in folds)
    for fold in folds:
        assert {source_video(clip_files[i]) for i in fold["clips"]} == set(fold["videos"])
    videos = [v for fold in folds for v in fold["videos"]]
    assert len(videos) == len(set(videos))
    assert sum(line.startswith(f"fold {k}/{FOLDS}: ") for k in range(1, FOLDS + 1) for line in log.splitlines()) == FOLDS
    # same --seed, same data: the attn run was dealt the same folds
    assert read(cv_runs["attn"][0], "folds.json") == read(run, "folds.json")


def test_each_fold_is_a_normal_run_holding_out_its_fold(cv_runs):
    run, _ = cv_runs["cnn"]
    folds = read(run, "folds.json")["folds"]
    for fold in folds:
        fold_dir = run / f"fold_{fold['fold']}"
        assert (fold_dir / "best.safetensors").exists() and (fold_dir / "metrics.csv").exists()
        split = read(fold_dir, "split.json")
        assert split["test"] == fold["videos"] and split["val"]
        assert not (set(split["train"]) & set(split["val"])) and not (set(split["train"] + split["val"]) & set(split["test"]))
        assert read(fold_dir, "run_config.json")["train"]["split"] == str(fold_dir / "split.json")


def test_same_seed_same_folds_and_leave_one_video_out_works():
    files = [f"{v:011d}.{s:03d}.mp4" for v in range(12) for s in range(v % 3 + 1)]
    levels = np.random.default_rng(0).integers(0, 5, (len(files), len(TRAITS)))
    clips = make_clips(files, levels)
    keys = group_keys(clips)
    assert assign_folds(clips, keys, 4, seed=0) == assign_folds(clips, keys, 4, seed=0)
    assert assign_folds(clips, keys, 4, seed=0) != assign_folds(clips, keys, 4, seed=1)
    assert sorted(assign_folds(clips, keys, 12, seed=0).values()) == list(range(1, 13))
    with pytest.raises(PerfexError, match="--folds 13 is more than the 12 source videos"):
        assign_folds(clips, keys, 13, seed=0)


def test_augmented_copies_follow_their_source_video_into_its_fold():
    files = [f"{v:011d}.{s:03d}.mp4" for v in range(9) for s in range(2)]
    n = len(files)
    levels = np.random.default_rng(1).integers(0, 5, (n, len(TRAITS)))
    clips = make_clips(files + [f"copy_{i}.mp4" for i in range(n)], np.concatenate([levels, levels]),
                       ["none"] * n + ["shift5"] * n, list(range(n)) * 2)
    keys = group_keys(clips)
    assignment = assign_folds(clips, keys, FOLDS, seed=0)
    fold_of_clip = np.array([assignment[k] for k in keys])
    assert (fold_of_clip[n:] == fold_of_clip[:n]).all()
    config = build_config(TrainConfig, "cnn", data=["x.csv"], folds=FOLDS)
    manifest = fold_manifest(clips, keys, fold_of_clip, 2, config)
    parts = split_indices(clips, manifest)
    assert set(parts["test"]) == set(np.flatnonzero(fold_of_clip == 2))


def test_out_of_fold_predictions_match_the_report(cv_runs, clip_files):
    run, _ = cv_runs["cnn"]
    oof = pd.read_csv(run / "oof_predictions.csv")
    report = read(run, "cv_report.json")
    assert sorted(oof["ID"]) == sorted(clip_files.index) and oof["ID"].is_unique
    scores = oof[[f"{t}_score" for t in TRAITS]].to_numpy()
    assert ((scores >= 0) & (scores <= 1)).all()
    for name, column in (("cnn", "pred"), *((b, b) for b in BASELINE_NAMES)):
        system = report["systems"][name]
        assert system["pooled"]["mean"]["accuracy"] == pytest.approx(mean_accuracy(oof, column))
        assert system["pooled"]["n_clips"] == len(oof) and set(system["pooled"]["per_trait"]) == set(TRAITS)
        per_fold = [mean_accuracy(oof[oof["fold"] == k], column) for k in range(1, FOLDS + 1)]
        assert [f["mean"]["accuracy"] for f in system["folds"]] == pytest.approx(per_fold)


def test_mean_and_std_over_folds_summarise_the_per_fold_values(cv_runs):
    report = read(cv_runs["cnn"][0], "cv_report.json")
    assert list(report["systems"]) == ["cnn", *BASELINE_NAMES]
    for system in report["systems"].values():
        assert [f["fold"] for f in system["folds"]] == list(range(1, FOLDS + 1))
        for key in HEADLINE.values():
            values = [f["mean"][key] for f in system["folds"] if f["mean"][key] is not None]
            summary = system["over_folds"]["mean"][key]
            assert summary["n_folds"] == len(values)
            if len(values) > 1:
                assert summary["mean"] == pytest.approx(np.mean(values))
                assert summary["std"] == pytest.approx(np.std(values, ddof=1))
    markdown = (cv_runs["cnn"][0] / "cv_report.md").read_text()
    assert all(name in markdown for name in BASELINE_NAMES) and "Per fold, QWK" in markdown


@pytest.mark.parametrize("flags, message", [
    (("--folds", "1"), "--folds 1 must be at least 2"),
    (("--folds", "0"), "--folds 0 must be at least 2"),
    (("--folds", "3", "--test-fraction", "0.2"), "--folds holds out each fold"),
    (("--folds", "3", "--split", "split.json"), "--folds makes a split for every fold"),
    (("--folds", "3", "--resume"), "--folds runs cannot be resumed"),
])
def test_bad_folds_end_with_one_line_and_status_2(cv_csv, tmp_path, flags, message):
    result = run_script("1dcnn_train.py", "--data", str(cv_csv), "--out", str(tmp_path / "cv"), *flags)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "cv").exists()


def test_more_folds_than_source_videos_are_refused_before_any_training(cv_csv, tmp_path):
    with pytest.raises(PerfexError, match="--folds 99 is more than the 13 source videos in the data; use at most 13"):
        run_crossval(tiny_config("cnn", cv_csv, tmp_path / "cv", folds=99))
    assert not (tmp_path / "cv").exists()


def test_a_run_directory_is_never_overwritten(cv_runs):
    run, _ = cv_runs["cnn"]
    for out in (run, run / "fold_1"):
        with pytest.raises(PerfexError, match="already holds a run; choose another --out"):
            check_cv_dir(out)


def test_test_script_reports_both_networks_and_every_baseline_per_fold(cv_runs, tmp_path):
    (cnn, _), (attn, _) = cv_runs["cnn"], cv_runs["attn"]
    result = run_script("attn_test.py", "--weights", str(cnn), str(attn), "--out", str(tmp_path / "both"))
    assert result.returncode == 0, result.stderr
    per_fold = result.stdout.split("Per fold, mean accuracy:")[1]
    assert "| fold | clips | cnn | attn | " + " | ".join(BASELINE_NAMES) + " |" in per_fold
    report = read(tmp_path / "both", "cv_report.json")
    assert report["networks"] == ["cnn", "attn"] and list(report["systems"]) == ["cnn", "attn", *BASELINE_NAMES]
    assert merge_cv_runs([str(cnn)])["systems"] == read(cnn, "cv_report.json")["systems"]


def test_test_script_refuses_runs_on_other_folds_and_mixed_inputs(cv_runs, tmp_path):
    cnn = cv_runs["cnn"][0]
    other = tmp_path / "other"
    other.mkdir()
    report = read(cnn, "cv_report.json")
    first, second = report["assignment"]["folds"][:2]
    first["videos"], second["videos"] = second["videos"], first["videos"]
    (other / "cv_report.json").write_text(json.dumps(report))
    with pytest.raises(PerfexError, match="other folds than"):
        merge_cv_runs([str(cnn), str(other)])
    with pytest.raises(PerfexError, match="not a cross-validation run directory"):
        merge_cv_runs([str(cnn), str(cnn / "fold_1" / "best.safetensors")])
    with pytest.raises(PerfexError, match="--subset does not apply to cross-validation run directories"):
        run_test("cnn", ["--weights", str(cnn), "--subset", "all", "--out", str(tmp_path / "t")])
