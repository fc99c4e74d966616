"""--targets other than the Big Five through cross-validation (train --folds, the test script on CV runs),
au_analysis.py and user_study.py: binary, K-level and continuous targets."""

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest

from helpers import run_script
from perfex.checkpoint.provenance import MANIFEST
from perfex.cli.analysis import run as run_analysis
from perfex.cli.scripts import run_test
from perfex.core.clips import ClipSet
from perfex.core.errors import PerfexError
from perfex.core.metrics import BASELINE_NAMES, BASELINES_BY_KIND, METRICS_BY_KIND
from perfex.core.schema import Target, Targets, parse_targets
from perfex.data.options import TrainConfig, build_config
from perfex.data.readers import load_clips
from perfex.data.splits import group_keys
from perfex.data.synth import generate_perfex, write_table
from perfex.evaluate.crossval import assign_folds, run_crossval, stratified_by
from perfex.evaluate.crossval_report import merge_cv_runs
from perfex.infer.clip_rows import IDENTITY_COLUMNS, clip_columns
from perfex.tools.study.build import SelectConfig, create_study
from perfex.tools.study.collect import CollectConfig, collect
from perfex.infer.clip_rows import deploy_targets

pytestmark = pytest.mark.e2e

SPEC = "deception:2,stress:continuous,grade:3"
TARGETS = parse_targets(SPEC)
BY_NAME = {t.name: t for t in TARGETS}


def labels_for(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A labels table (File + deception 0/1, stress in its own units, grade 0..2) for the clips of ``frame``;
    deception and stress follow the clip's mean AU12 so there is something to find."""
    per_clip = frame.groupby("File", sort=False)["AU12_r"].mean()
    rng = np.random.default_rng(seed)
    signal = (per_clip - per_clip.mean()).to_numpy() / per_clip.std()
    return pd.DataFrame({"File": per_clip.index, "deception": (signal + rng.normal(0, 0.5, len(signal)) > 0).astype(int),
                         "stress": np.round(50 + 10 * signal + rng.normal(0, 3, len(signal)), 2),
                         "grade": rng.integers(0, 3, len(signal))})


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """30 short clips of 13 source videos and a labels table of the three targets: (data, labels, labels table)."""
    root = tmp_path_factory.mktemp("targets")
    frame = generate_perfex(30, seed=4, min_frames=50, max_frames=80, clips_per_person=(1, 3))
    write_table(frame, root / "small.csv.gz")
    table = labels_for(frame)
    table.to_csv(root / "labels.csv", index=False)
    return root / "small.csv.gz", root / "labels.csv", table


@pytest.fixture(scope="module")
def cv_run(labelled, tmp_path_factory):
    """A 2-fold cross-validation of the cnn on the three targets (in this process): (run directory, cv_report.json)."""
    data, labels, _ = labelled
    out = tmp_path_factory.mktemp("cv") / "cv"
    config = build_config(TrainConfig, "cnn", data=[str(data)], labels=str(labels), targets=SPEC, out=str(out), folds=2,
                          epochs=1, max_frames=32, batch_size=16, threads=1, progress=False, device="cpu")
    run_crossval(config)
    return out, json.loads((out / "cv_report.json").read_text())


@pytest.mark.parametrize("name", TARGETS.names)
def test_cv_scores_each_target_on_its_kinds_metrics_beside_the_baselines_that_apply(cv_run, labelled, name):
    run, report = cv_run
    target = BY_NAME[name]
    kind = target.kind
    assert {"name": name, "levels": target.levels, "kind": kind} in report["targets"]
    oof = pd.read_csv(run / "oof_predictions.csv")
    truth = labelled[2].set_index("File").loc[oof["File"], name].to_numpy()
    np.testing.assert_allclose(oof[f"{name}_true"], truth / max(target.levels - 1, 1))
    for system in ("cnn", *BASELINES_BY_KIND[kind]):
        pooled = report["systems"][system]["pooled"]["per_trait"][name]
        assert set(pooled) == set(METRICS_BY_KIND[kind])
        column = oof["{}_{}".format(name, "pred" if system == "cnn" else system)]
        if kind == "continuous":
            assert pooled["mae"] == pytest.approx(np.mean(np.abs(column - oof[f"{name}_true"])))
        else:
            assert pooled["accuracy"] == pytest.approx(np.mean(column == oof[f"{name}_true"]))
        over = report["systems"][system]["over_folds"]["per_trait"][name]
        key = "mae" if kind == "continuous" else "accuracy"
        per_fold = [f["per_trait"][name][key] for f in report["systems"][system]["folds"]]
        assert over[key]["mean"] == pytest.approx(np.mean(per_fold)) and over[key]["n_folds"] == 2
    others = set(BASELINE_NAMES) - set(BASELINES_BY_KIND[kind])
    assert not any(f"{name}_{b}" in oof.columns for b in others)
    assert all(v is None for b in others for v in report["systems"][b]["pooled"]["per_trait"][name].values())
    markdown = (run / "cv_report.md").read_text()
    section = markdown.split(f"### {name} (")[1].split("###")[0]
    assert "**cnn**" in section and all(b not in section for b in others)
    assert all(b in section for b in BASELINES_BY_KIND[kind])


def test_continuous_predictions_are_in_the_labels_units(cv_run):
    oof = pd.read_csv(cv_run[0] / "oof_predictions.csv")
    assert 30 < oof["stress_pred"].mean() < 70 and 30 < oof["stress_train_mean"].mean() < 70
    assert ((oof["deception_score"] >= 0) & (oof["deception_score"] <= 1)).all()


def test_test_script_reports_a_targets_cv_run_and_refuses_runs_of_other_targets(cv_run, tmp_path):
    run, report = cv_run
    assert run_test("cnn", ["--weights", str(run), "--out", str(tmp_path / "t")]) == 0
    text = (tmp_path / "t" / "cv_report.md").read_text()
    assert "### deception (binary)" in text and "### stress (continuous)" in text and "### grade (3 ordered levels)" in text
    assert json.loads((tmp_path / "t" / "cv_report.json").read_text())["targets"] == report["targets"]
    big_five = tmp_path / "big_five"
    big_five.mkdir()
    (big_five / "cv_report.json").write_text(json.dumps({k: v for k, v in report.items() if k != "targets"}))
    with pytest.raises(PerfexError, match="predicts other targets"):
        merge_cv_runs([str(run), str(big_five)])


def strata_clips(targets: Targets, scores: np.ndarray) -> ClipSet:
    """One two-frame clip per row of ``scores``, each its own source video."""
    n = len(scores)
    levels = np.where([t.continuous for t in targets], 0, np.rint(scores * [max(t.levels - 1, 1) for t in targets]))
    return ClipSet(ids=np.arange(n), files=np.array([f"{v:011d}.000.mp4" for v in range(n)], dtype=object),
                   offsets=np.arange(n + 1) * 2, features=np.zeros((2 * n, 17), np.float32),
                   times=np.zeros(2 * n, np.float32), levels=levels.astype(np.int64), scores=scores, targets=targets)


@pytest.mark.parametrize("spec, words", [("deception:2", "rounded to 2 strata"), ("grade:3", "rounded to 3 strata"),
                                         ("stress:continuous", "5 quantile bins")])
def test_folds_are_stratified_for_every_kind(spec, words):
    targets = parse_targets(spec)
    rng = np.random.default_rng(0)
    raw = rng.normal(50, 10, 40) if targets[0].continuous else rng.integers(0, targets[0].levels, 40) / (targets[0].levels - 1)
    clips = strata_clips(targets, raw[:, None])
    keys = group_keys(clips)
    assert words in stratified_by(clips, keys)
    folds = np.array([assign_folds(clips, keys, 4, seed=0)[k] for k in keys])
    if targets[0].continuous:  # every fold gets videos from both halves of the label's range
        assert all(set(raw[folds == f] > np.median(raw)) == {True, False} for f in range(1, 5))
    else:  # every level is spread evenly over the folds
        for value in np.unique(raw):
            counts = np.bincount(folds[raw == value], minlength=5)[1:]
            assert counts.max() - counts.min() <= 1


def fake_deploy(frame: pd.DataFrame, targets: Targets, path, seed: int = 0) -> pd.DataFrame:
    """A deploy per-clip CSV of ``targets`` (columns as deploy writes them) for the clips of ``frame``."""
    rng = np.random.default_rng(seed)
    clips = frame.groupby("ID", sort=False)["File"].first()
    table = pd.DataFrame({c: "" for c in IDENTITY_COLUMNS}, index=range(len(clips)))
    table["ID"], table["File"], table["status"], table["n_frames"] = clips.index, clips.to_numpy(), "ok", 60
    for t in targets:
        if t.continuous:
            table[t.name] = rng.normal(50, 10, len(clips))
            continue
        probs = rng.dirichlet(np.ones(t.levels), len(clips))
        table[t.name] = probs.argmax(axis=1) / (t.levels - 1)
        table[f"{t.name}_score"] = probs @ t.grid
        for k in range(t.levels):
            table[f"p_{t.name}_{k}"] = probs[:, k]
    table = table[clip_columns(targets)]
    table.to_csv(path, index=False)
    return table


def test_deploy_targets_are_read_off_the_columns():
    assert deploy_targets(clip_columns(TARGETS)) == Targets(tuple(Target(t.name, t.levels) for t in TARGETS))
    assert deploy_targets(clip_columns()).is_big_five
    assert deploy_targets(["ID", "extroversion"]) is None


@pytest.mark.parametrize("spec", ["deception:2", "grade:3", "stress:continuous"])
def test_au_analysis_correlates_the_chosen_targets_labels(labelled, tmp_path, spec):
    data, labels, table = labelled
    assert run_analysis(["--data", str(data), "--labels", str(labels), "--targets", spec, "--bootstrap", "20",
                         "--out", str(tmp_path / "o")]) == 0
    result = pd.read_csv(tmp_path / "o" / "au_trait_correlations.csv")
    name = spec.split(":")[0]
    assert set(result["trait"]) == {name} and (result["n_clips"] == 30).all()
    frame = pd.read_csv(data)
    per_clip = frame.groupby("File")["AU12_r"].mean().to_frame().join(table.set_index("File"))
    row = result[result["statistic"] == "AU12 mean"].iloc[0]
    assert row["spearman_rho"] == pytest.approx(per_clip["AU12_r"].corr(per_clip[name], method="spearman"), abs=1e-5)
    assert f"### {name}" in (tmp_path / "o" / "au_trait_correlations.md").read_text()


def test_au_analysis_follows_a_deploy_csvs_targets(labelled, tmp_path):
    data = labelled[0]
    deploy = fake_deploy(pd.read_csv(data), TARGETS, tmp_path / "deploy.csv")
    assert run_analysis(["--data", str(data), "--predictions", str(tmp_path / "deploy.csv"), "--prediction-values",
                         "score", "--bootstrap", "10", "--out", str(tmp_path / "all")]) == 0
    result = pd.read_csv(tmp_path / "all" / "au_trait_correlations.csv")
    assert list(dict.fromkeys(result["trait"])) == list(TARGETS.names)
    frame = pd.read_csv(data).groupby("ID")["AU12_r"].mean()
    expected = {"deception": "deception_score", "stress": "stress", "grade": "grade_score"}
    for name, column in expected.items():
        row = result[(result["statistic"] == "AU12 mean") & (result["trait"] == name)].iloc[0]
        values = deploy.set_index("ID").loc[frame.index, column]
        assert row["pearson_r"] == pytest.approx(np.corrcoef(frame, values)[0, 1], abs=1e-5)
    assert run_analysis(["--data", str(data), "--predictions", str(tmp_path / "deploy.csv"), "--targets", "stress",
                         "--bootstrap", "10", "--out", str(tmp_path / "one")]) == 0
    assert set(pd.read_csv(tmp_path / "one" / "au_trait_correlations.csv")["trait"]) == {"stress"}
    result = run_script("au_analysis.py", "--data", str(data), "--predictions", str(tmp_path / "deploy.csv"), "--targets",
                        "openness", "--out", str(tmp_path / "bad"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "names 'openness', which --predictions" in result.stderr and SPEC in result.stderr


@pytest.fixture(scope="module")
def level_study(tmp_path_factory):
    """A study of a binary and a 3-level target: 6 clips, 3 raters who answer each clip's true level."""
    root = tmp_path_factory.mktemp("study")
    frame = generate_perfex(12, seed=3, min_frames=60, max_frames=80)
    write_table(frame, root / "input.csv")
    targets = parse_targets("deception:2,grade:3")
    fake_deploy(frame, targets, root / "deploy.csv")
    manifest = create_study(SelectConfig(predictions=str(root / "deploy.csv"), data=[str(root / "input.csv")],
                                         out=str(root / "s"), raters="3", n=6, page=True, strategy="stratified"))
    rng = np.random.default_rng(1)
    truth = {clip: {"deception": int(rng.integers(0, 2)), "grade": int(rng.integers(0, 3)) / 2} for clip in manifest["clip_ids"]}
    for rater in manifest["raters"]:
        path = root / "s" / f"sheet_{rater}.csv"
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
        for name in targets.names:
            sheet[name] = [f"{truth[clip][name]:g}" for clip in sheet["ID"]]
        sheet.to_csv(path, index=False, lineterminator="\n")
    summary = collect(CollectConfig(study=str(root / "s"), out=str(root / "r"), bootstrap=20))
    return root, manifest, truth, summary


def test_a_study_rates_each_level_target_on_its_own_levels(level_study):
    root, manifest, _, _ = level_study
    assert manifest["targets"] == [{"name": "deception", "levels": 2}, {"name": "grade", "levels": 3}]
    assert manifest["scale"]["values_per_target"] == {"deception": [0.0, 1.0], "grade": [0.0, 0.5, 1.0]}
    assert list(pd.read_csv(root / "s" / "sheet_rater1.csv").columns) == ["study_id", "rater", "ID", "deception", "grade"]
    clips = pd.read_csv(root / "s" / "clips.csv")
    assert {"predicted_deception", "predicted_grade_score"} <= set(clips.columns)
    page = (root / "s" / "rate.html").read_text()
    assert '"values": ["0", "0.5", "1"]' in page and '"sheet_columns": ["study_id", "rater", "ID", "deception", "grade"]' in page


def test_collect_turns_the_ratings_into_retrain_labels_of_the_targets(level_study):
    root, manifest, truth, summary = level_study
    assert list(summary["agreement"]) == ["deception", "grade"] and summary["agreement"]["grade"]["alpha_ordinal"] == 1.0
    clips = load_clips([root / "r" / "retrain.csv.gz"], targets=parse_targets("deception:2,grade:3"), require_labels=True)
    rated = {str(f): s for f, s in zip(clips.files, clips.scores)}
    files = pd.read_csv(root / "s" / "clips.csv", dtype={"ID": str}).set_index("ID")["File"]
    for clip, answers in truth.items():
        np.testing.assert_allclose(rated[files[clip]], [answers["deception"], answers["grade"]])


def test_a_bad_answer_names_the_targets_levels(level_study, tmp_path):
    root, manifest, _, _ = level_study
    study = tmp_path / "s"
    study.mkdir()
    for name in ("clips.csv", MANIFEST, "sheet_rater1.csv", "sheet_rater2.csv"):
        (study / name).write_bytes((root / "s" / name).read_bytes())
    sheet = pd.read_csv(study / "sheet_rater1.csv", dtype=str, keep_default_na=False)
    sheet.loc[0, "grade"] = "0.25"
    sheet.to_csv(study / "sheet_rater1.csv", index=False, lineterminator="\n")
    with pytest.raises(PerfexError, match=r"grade = '0.25' is off the grid scale; answers must be one of 0, 0.5, 1"):
        collect(CollectConfig(study=str(study), out=str(tmp_path / "r"), bootstrap=0))


def test_a_study_of_continuous_targets_is_refused_in_one_line(labelled, tmp_path):
    data = labelled[0]
    fake_deploy(pd.read_csv(data), TARGETS, tmp_path / "deploy.csv")
    result = run_script("user_study.py", "select", "--predictions", str(tmp_path / "deploy.csv"), "--data", str(data),
                        "--raters", "2", "--n", "4", "--out", str(tmp_path / "s"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "predicts continuous target(s) stress" in result.stderr and not (tmp_path / "s").exists()
