"""User study: select -> sheets -> collect -> retrain, sheet validation errors, agreement against direct computations."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_script

from perfex.core.errors import PerfexError
from perfex.core.schema import N_LEVELS, TRAITS
from perfex.tools.study.agreement import icc2k, ordinal_alpha
from perfex.tools.study.build import SelectConfig, create_study
from perfex.tools.study.collect import CollectConfig, collect
from perfex.checkpoint.provenance import study_for
from perfex.tools.study.select import PROB_COLUMNS, choose
from perfex.tools.study.sheets import parse_raters
from perfex.data.synth import generate_perfex, write_table

pytestmark = pytest.mark.e2e

GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def fake_predictions(frame: pd.DataFrame, path: Path, seed: int = 0) -> Path:
    """A deploy-style per-clip CSV for the clips of ``frame`` (random probabilities; no model needed)."""
    rng = np.random.default_rng(seed)
    clips = frame.groupby("ID", sort=False)["File"].first()
    probs = rng.dirichlet(np.full(N_LEVELS, 0.7), size=(len(clips), len(TRAITS)))
    table = pd.DataFrame({"ID": clips.index, "File": clips.to_numpy(), "status": "ok"})
    for t, trait in enumerate(TRAITS):
        table[trait] = probs[:, t].argmax(axis=1) / 4
        table[f"{trait}_score"] = probs[:, t] @ np.array(GRID)
    table[PROB_COLUMNS] = probs.reshape(len(clips), -1)
    table.to_csv(path, index=False)
    return path


def true_levels(frame: pd.DataFrame, clip_ids: list[str]) -> np.ndarray:
    per_clip = frame.groupby(frame["ID"].astype(str))[list(TRAITS)].first()
    return per_clip.loc[clip_ids].to_numpy()


@pytest.fixture(scope="module")
def small_study(tmp_path_factory):
    """A study of 6 clips and 3 raters on generated data with made-up predictions."""
    root = tmp_path_factory.mktemp("study")
    frame = generate_perfex(12, seed=3, min_frames=60, max_frames=80)
    write_table(frame, root / "input.csv")
    fake_predictions(frame, root / "pred.csv")
    manifest = create_study(SelectConfig(predictions=str(root / "pred.csv"), data=[str(root / "input.csv")],
                                         out=str(root / "s"), raters="alice,bob,carol", n=6))
    return root, frame, manifest


def fill(study: Path, manifest: dict, rater: str, values: np.ndarray) -> Path:
    """Write ``rater``'s sheet with ``values`` [clips in manifest order, traits], keeping the sheet's own row order."""
    path = study / f"sheet_{rater}.csv"
    sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
    row_of = {clip: i for i, clip in enumerate(manifest["clip_ids"])}
    for t, trait in enumerate(TRAITS):
        sheet[trait] = [f"{values[row_of[clip], t]:g}" for clip in sheet["ID"]]
    sheet.to_csv(path, index=False, lineterminator="\n")
    return path


def test_select_writes_clips_sheets_in_shuffled_orders_and_a_manifest(small_study):
    root, _, manifest = small_study
    study = root / "s"
    clips = pd.read_csv(study / "clips.csv", dtype={"ID": str})
    assert clips["ID"].tolist() == manifest["clip_ids"] and (clips["study_id"] == manifest["study_id"]).all()
    orders = []
    for rater in ("alice", "bob", "carol"):
        sheet = pd.read_csv(study / f"sheet_{rater}.csv", dtype={"ID": str})
        assert list(sheet.columns) == ["study_id", "rater", "ID", *TRAITS] and sheet[list(TRAITS)].isna().all().all()
        assert sorted(sheet["ID"]) == sorted(manifest["clip_ids"]) and (sheet["study_id"] == manifest["study_id"]).all()
        orders.append(sheet["ID"].tolist())
    assert len({tuple(o) for o in orders}) == 3
    recorded = json.loads((study / "study.json").read_text())
    assert recorded["data"][0]["sha256"] and recorded["scale"]["values"] == list(GRID)


def test_uncertain_strategy_picks_the_flattest_predictions_and_per_source_limits_videos():
    probs = np.zeros((4, len(TRAITS), N_LEVELS))
    probs[:, :, 0] = [[1.0], [0.6], [0.2], [0.9]]
    probs[:, :, 1] = 1 - probs[:, :, 0]
    frame = pd.DataFrame(probs.reshape(4, -1), columns=PROB_COLUMNS)
    frame["File"] = ["aaaaaaaaaaa.000.mp4", "bbbbbbbbbbb.000.mp4", "bbbbbbbbbbb.001.mp4", "ccccccccccc.000.mp4"]
    assert choose(frame, "uncertain", 2)[0] == [1, 2]
    assert choose(frame, "uncertain", 2, kind="margin")[0] == [1, 2]
    assert choose(frame, "uncertain", 2, per_source=1)[0] == [1, 3]
    with pytest.raises(PerfexError, match="only 3 predicted clips can be chosen with --per-source 1"):
        choose(frame, "random", 4, per_source=1)


def test_stratified_strategy_covers_every_predicted_level():
    levels = np.repeat(np.arange(N_LEVELS), 6)
    frame = pd.DataFrame({t: levels / 4 for t in TRAITS} | {"File": [f"v{i}" for i in range(len(levels))]})
    taken, _ = choose(frame, "stratified", 5)
    assert sorted(levels[taken]) == list(range(N_LEVELS))


def test_raters_by_number_or_name():
    assert parse_raters("3") == ["rater1", "rater2", "rater3"]
    with pytest.raises(PerfexError, match="names a rater twice"):
        parse_raters("alice,alice")


def test_agreement_matches_direct_computation():
    rng = np.random.default_rng(1)
    truth = rng.choice(GRID, 15)
    ratings = np.clip(np.rint((truth[:, None] + rng.normal(0, 0.2, (15, 4))) * 4) / 4, 0, 1)
    n, k = ratings.shape
    row_means, col_means, grand = ratings.mean(1), ratings.mean(0), ratings.mean()
    msr = k * sum((m - grand) ** 2 for m in row_means) / (n - 1)
    msc = n * sum((m - grand) ** 2 for m in col_means) / (k - 1)
    sse = sum((ratings[i, j] - row_means[i] - col_means[j] + grand) ** 2 for i in range(n) for j in range(k))
    mse = sse / ((n - 1) * (k - 1))
    assert icc2k(ratings) == pytest.approx((msr - mse) / (msr + (msc - mse) / n))
    krippendorff = pytest.importorskip("krippendorff")
    expected = krippendorff.alpha(reliability_data=ratings.T, level_of_measurement="ordinal", value_domain=list(GRID))
    assert ordinal_alpha(ratings, GRID) == pytest.approx(expected)


@pytest.mark.parametrize("damage, message", [
    (lambda lines: lines[:2] + [lines[2].replace(",", ",,", 1)] + lines[3:],
     "sheet_alice.csv line 3: 9 fields where the header has 8 (a shifted row?); keep every answer in its trait's column"),
    (lambda lines: lines[:3] + [lines[3].rsplit(",", 1)[0] + ",0.6"] + lines[4:],
     "sheet_alice.csv line 4 (clip {clip}): openness = '0.6' is off the grid scale; answers must be one of 0, 0.25, 0.5, 0.75, 1"),
    (lambda lines: lines[:2] + [lines[1]] + lines[3:],
     "sheet_alice.csv line 3: clip {dup} is answered twice (first on line 2)"),
    (lambda lines: [lines[0]] + [line.replace("study-", "study-0", 1) for line in lines[1:]],
     "sheet_alice.csv line 2: study_id '{other}' is not this study ({study_id}); the sheet belongs to another study"),
    (lambda lines: lines[:1] + [",".join("99999" if i == 2 else f for i, f in enumerate(lines[1].split(",")))] + lines[2:],
     "sheet_alice.csv line 2: clip ID '99999' is not one of this study's clips (clips.csv)"),
    (lambda lines: lines[:-1],
     "sheet_alice.csv: clip {last} has no row (1 of 6 clips missing); the sheet needs one answered row per study clip"),
])
def test_bad_sheets_get_one_line_errors_naming_file_and_line(small_study, tmp_path, damage, message):
    root, frame, manifest = small_study
    study = tmp_path / "s"
    shutil.copytree(root / "s", study)
    for rater in ("alice", "bob", "carol"):
        fill(study, manifest, rater, true_levels(frame, manifest["clip_ids"]))
    lines = (study / "sheet_alice.csv").read_text().splitlines()
    (study / "sheet_alice.csv").write_text("\n".join(damage(lines)) + "\n")
    result = run_script("user_study.py", "collect", "--study", str(study), "--out", str(tmp_path / "out"), env=ENV)
    clip, dup, last = lines[3].split(",")[2], lines[1].split(",")[2], lines[-1].split(",")[2]
    expected = message.format(clip=clip, dup=dup, last=last, other="study-0" + manifest["study_id"][6:], study_id=manifest["study_id"])
    assert result.returncode == 2 and result.stderr == f"user_study.py: error: {expected}\n"
    assert not (tmp_path / "out" / "retrain.csv.gz").exists()


def test_a_spreadsheet_round_trip_with_semicolons_and_a_missing_answer(small_study, tmp_path):
    root, frame, manifest = small_study
    study = tmp_path / "s"
    shutil.copytree(root / "s", study)
    for rater in ("alice", "bob", "carol"):
        fill(study, manifest, rater, true_levels(frame, manifest["clip_ids"]))
    sheet = study / "sheet_bob.csv"
    sheet.write_text("\ufeff" + sheet.read_text().replace(",", ";"), encoding="utf-8")
    collect(CollectConfig(study=str(study), out=str(tmp_path / "ok"), bootstrap=5))
    lines = sheet.read_text(encoding="utf-8-sig").splitlines()
    lines[2] = lines[2].rsplit(";", 1)[0] + ";"
    sheet.write_text("\n".join(lines) + "\n")
    clip = lines[2].split(";")[2]
    with pytest.raises(PerfexError, match=rf"^sheet_bob.csv line 3 \(clip {clip}\): no answer for openness"):
        collect(CollectConfig(study=str(study), out=str(tmp_path / "bad"), bootstrap=5))


# ----- the whole loop: train, deploy, select, rate, collect, retrain -----

@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    root = tmp_path_factory.mktemp("loop")
    write_table(generate_perfex(60, seed=21, spread=3.0, min_frames=50, max_frames=70), root / "train.csv")
    fresh = generate_perfex(30, seed=22, spread=3.0, min_frames=50, max_frames=70, id_start=5000)
    write_table(fresh, root / "fresh.csv")
    steps = [
        ("1dcnn_train.py", "--data", str(root / "train.csv"), "--out", str(root / "run"), "--epochs", "2", "--no-progress",
         "--min-frames", "40"),
        ("1dcnn_deploy.py", "--weights", str(root / "run" / "best.safetensors"), "--data", str(root / "fresh.csv"),
         "--out", str(root / "deploy.csv"), "--no-progress"),
        ("user_study.py", "select", "--predictions", str(root / "deploy.csv"), "--data", str(root / "fresh.csv"),
         "--strategy", "uncertain", "--n", "20", "--raters", "3", "--page", "--out", str(root / "study")),
    ]
    for step in steps:
        result = run_script(*step, env=ENV)
        assert result.returncode == 0, result.stderr
    manifest = json.loads((root / "study" / "study.json").read_text())
    truth = true_levels(fresh, manifest["clip_ids"])
    rng = np.random.default_rng(5)
    answers = {"rater1": truth + rng.normal(0, 0.12, truth.shape), "rater2": truth + rng.normal(0, 0.12, truth.shape),
               "rater3": rng.choice(GRID, truth.shape)}
    for rater, values in answers.items():
        fill(root / "study", manifest, rater, np.clip(np.rint(values * 4) / 4, 0, 1))
    result = run_script("user_study.py", "collect", "--study", str(root / "study"), "--out", str(root / "results"),
                        "--bootstrap", "50", env=ENV)
    assert result.returncode == 0, result.stderr
    retrain = run_script("1dcnn_retrain.py", "--weights", str(root / "run" / "best.safetensors"), "--data",
                         str(root / "results" / "retrain.csv.gz"), "--out", str(root / "retrain"), "--epochs", "1",
                         "--no-progress", "--val-fraction", "0.2", "--test-fraction", "0.2", env=ENV)
    return root, manifest, retrain


def test_loop_flags_the_random_rater(loop):
    root, _, _ = loop
    summary = json.loads((root / "results" / "agreement.json").read_text())
    assert [r for r, c in summary["rater_checks"].items() if c["flagged"]] == ["rater3"]
    assert (root / "results" / "report.md").read_text().count("| rater3 |") == 1
    assert (root / "results" / "agreement.png").stat().st_size > 0 and (root / "results" / "ratings.png").stat().st_size > 0


def test_loop_agreement_matches_a_direct_computation_on_the_sheets(loop):
    root, manifest, _ = loop
    summary = json.loads((root / "results" / "agreement.json").read_text())
    sheets = [pd.read_csv(root / "study" / f"sheet_rater{i}.csv", dtype={"ID": str}).set_index("ID").loc[manifest["clip_ids"]]
              for i in (1, 2, 3)]
    for trait in TRAITS:
        ratings = np.stack([s[trait].to_numpy() for s in sheets], axis=1)
        assert summary["agreement"][trait]["icc2k"] == pytest.approx(icc2k(ratings))
        assert summary["agreement"][trait]["alpha_ordinal"] == pytest.approx(ordinal_alpha(ratings, GRID))
        low, high = summary["agreement"][trait]["icc2k_ci95"]
        assert low <= summary["agreement"][trait]["icc2k"] <= high


def test_loop_retrain_csv_holds_the_rated_frames_with_the_raters_mean(loop):
    root, manifest, retrain = loop
    assert retrain.returncode == 0, retrain.stderr
    data = pd.read_csv(root / "results" / "retrain.csv.gz")
    fresh = pd.read_csv(root / "fresh.csv")
    assert sorted(data["ID"].astype(str).unique()) == sorted(manifest["clip_ids"])
    assert len(data) == fresh["ID"].astype(str).isin(manifest["clip_ids"]).sum() and (data["study_id"] == manifest["study_id"]).all()
    sheets = [pd.read_csv(root / "study" / f"sheet_rater{i}.csv").set_index("ID") for i in (1, 2, 3)]
    mean = sum(s[list(TRAITS)] for s in sheets) / 3
    per_clip = data.groupby("ID")[list(TRAITS)].first()
    assert np.array_equal(per_clip.to_numpy(), np.floor(mean.loc[per_clip.index].to_numpy() * 4 + 0.5) / 4)
    record = study_for(root / "results" / "retrain.csv.gz")
    assert record["study_id"] == manifest["study_id"] and record["verified"] and record["raters"] == ["rater1", "rater2", "rater3"]


def test_loop_retrain_checkpoint_lineage_names_the_study(loop):
    """The retrain checkpoint's lineage records the study its data came from."""
    from perfex.checkpoint.io import read_config

    root, manifest, retrain = loop
    assert retrain.returncode == 0, retrain.stderr
    meta = read_config(root / "retrain" / "best.safetensors")
    assert meta.lineage.study["study_id"] == manifest["study_id"]


def test_user_study_help_and_bad_flags():
    top = run_script("user_study.py", "--help")
    assert top.returncode == 0 and "select" in top.stdout and "collect" in top.stdout
    select = run_script("user_study.py", "select", "--help")
    assert select.returncode == 0 and "--data" in select.stdout and "(default: uncertain)" in " ".join(select.stdout.split())
    collect_help = run_script("user_study.py", "collect", "--help")
    assert collect_help.returncode == 0 and "(default: mean)" in " ".join(collect_help.stdout.split())
    assert run_script("user_study.py", "select", "--strategy", "nope").returncode == 2


def test_likert_answers_are_mapped_to_the_grid_and_videos_shown_on_the_page(tmp_path):
    frame = generate_perfex(6, seed=4, min_frames=60, max_frames=80)
    write_table(frame, tmp_path / "input.csv")
    fake_predictions(frame, tmp_path / "pred.csv")
    videos = tmp_path / "videos"
    videos.mkdir()
    first = frame["File"].iloc[0]
    (videos / first).write_bytes(b"not really a video")
    study = tmp_path / "s"
    manifest = create_study(SelectConfig(predictions=str(tmp_path / "pred.csv"), data=[str(tmp_path / "input.csv")],
                                         out=str(study), raters="2", n=6, scale="likert5", page=True, videos=str(videos)))
    assert (study / "videos" / first).read_bytes() == b"not really a video" and f'"video": "videos/{first}"' in (study / "rate.html").read_text()
    answers = {"rater1": np.tile([1, 2, 3, 4, 5], (6, 1)), "rater2": np.tile([2, 2, 3, 5, 5], (6, 1))}
    for rater, values in answers.items():
        fill(study, manifest, rater, values)
    collect(CollectConfig(study=str(study), out=str(tmp_path / "out"), bootstrap=0))
    data = pd.read_csv(tmp_path / "out" / "retrain.csv.gz")
    assert data[list(TRAITS)].drop_duplicates().to_numpy().tolist() == [[0.25, 0.25, 0.5, 1.0, 1.0]]  # means .125 .25 .5 .875 1, rounded
    with pytest.raises(PerfexError, match=r"line 2 \(clip \d+\): extroversion = '0.25' is off the likert5 scale"):
        fill(study, manifest, "rater1", np.full((6, 5), 0.25))
        collect(CollectConfig(study=str(study), out=str(tmp_path / "again"), bootstrap=0))


def test_blank_sheets_and_existing_outputs_are_refused(small_study, tmp_path):
    root, _, _ = small_study
    with pytest.raises(PerfexError, match="^sheet_alice.csv: no answers yet; fill the sheet, or pass --sheets"):
        collect(CollectConfig(study=str(root / "s"), out=str(tmp_path / "out")))
    with pytest.raises(PerfexError, match="is not empty; pass --force"):
        create_study(SelectConfig(predictions=str(root / "pred.csv"), data=[str(root / "input.csv")], out=str(root / "s"),
                                  raters="2", n=2))


def test_openface_inputs_become_perfex_rows_with_integer_ids(tmp_path):
    from perfex.data.readers import load_clips
    from perfex.data.synth import generate_openface_dir

    generate_openface_dir(tmp_path / "of", 3, seed=2, min_frames=60, max_frames=80)
    clips = load_clips([tmp_path / "of"])
    fake_predictions(pd.DataFrame({"ID": clips.ids, "File": clips.files}), tmp_path / "pred.csv")
    manifest = create_study(SelectConfig(predictions=str(tmp_path / "pred.csv"), data=[str(tmp_path / "of")],
                                         out=str(tmp_path / "s"), raters="2", n=3, strategy="random"))
    for k, rater in enumerate(("rater1", "rater2")):
        fill(tmp_path / "s", manifest, rater, np.full((3, 5), GRID[k * 4]))
    collect(CollectConfig(study=str(tmp_path / "s"), out=str(tmp_path / "out"), bootstrap=0))
    again = load_clips([tmp_path / "out" / "retrain.csv.gz"], require_labels=True)
    assert sorted(again.files) == sorted(clips.files) and sorted(again.ids.tolist()) == [0, 1, 2]
    assert (again.levels == 2).all() and sorted(again.lengths) == sorted(clips.lengths)
