"""Augmentation counts and provenance, linear grouping, and source-video-disjoint splits."""

import numpy as np
import pyarrow as pa
import pytest

from perfex.data.augment import AugmentConfig, augment_table, augmentation_rows
from perfex.core.clips import ClipSet
from perfex.core.errors import PerfexError
from perfex.data.splits import group_keys, make_split, source_video, split_indices, check_disjoint
from perfex.core.tables import group_rows

pytestmark = pytest.mark.e2e


def perfex_table(lengths, files):
    ids = np.repeat(np.arange(len(lengths)) + 10, lengths)
    frame = np.concatenate([np.arange(n) for n in lengths]).astype(float)
    return pa.table({"ID": ids, "File": np.repeat(np.array(files, dtype=object), lengths),
                     "AU01_r": frame, "Word": np.repeat(np.array(["w"] * len(lengths), dtype=object), lengths)})


def test_group_rows_keeps_first_appearance_order_and_file_order():
    ids = np.array([7, 3, 7, 3, 9, 7])
    unique, rows, offsets = group_rows(ids)
    assert unique.tolist() == [7, 3, 9]
    assert [rows[offsets[k]:offsets[k + 1]].tolist() for k in range(3)] == [[0, 2, 5], [1, 3], [4]]


def test_augmentation_rows_match_the_original_recipes():
    copies = dict(augmentation_rows(250, AugmentConfig()))
    assert copies["subsample2"].tolist() == list(range(0, 250, 2))
    assert copies["shift5"][:7].tolist() == [0, 0, 0, 0, 0, 0, 1] and copies["shift5"][-1] == 244
    windows = [k for k in copies if k.startswith("window100")]
    assert windows == ["window100_0", "window100_1"]
    assert copies["window100_1"].tolist() == list(range(100, 200))


def test_augment_table_counts_ids_and_provenance():
    table = perfex_table([250, 90, 330], ["aaaaaaaaaaa.000.mp4", "aaaaaaaaaaa.001.mp4", "bbbbbbbbbbb.000.mp4"])
    out, counts = augment_table(table, AugmentConfig())
    assert counts == {"original": 3, "subsample2": 3, "shift5": 3, "window100": 2 + 0 + 3}
    ids = out.column("ID").to_numpy()
    assert len(np.unique(ids)) == 3 + 3 + 3 + 5
    assert out.num_rows == 670 + (125 + 45 + 165) + 670 + 500
    kinds = np.array(out.column("augmentation").to_pylist())
    sources = out.column("source_id").to_numpy()
    assert set(sources[kinds != "none"]) == {10, 11, 12}
    # every copy keeps its source clip's File and carries the other columns along
    files = np.array(out.column("File").to_pylist())
    assert (files[sources == 12] == "bbbbbbbbbbb.000.mp4").all()
    assert set(out.column("Word").to_pylist()) == {"w"}


def test_augment_refuses_already_augmented_input():
    table, _ = augment_table(perfex_table([120], ["x"]), AugmentConfig())
    with pytest.raises(PerfexError, match="already has an 'augmentation' column"):
        augment_table(table, AugmentConfig())


def make_clips(files, augmentation=None, source_ids=None):
    n = len(files)
    return ClipSet(
        ids=np.arange(n), files=np.array(files, dtype=object), offsets=np.arange(n + 1) * 2,
        features=np.zeros((2 * n, 17), np.float32), times=np.zeros(2 * n, np.float32),
        augmentation=None if augmentation is None else np.array(augmentation, dtype=object),
        source_ids=None if source_ids is None else np.array(source_ids),
    )


def test_source_video_uses_youtube_id_of_first_impressions_names():
    assert source_video("XQ3do4LDFv8.000.mp4") == "XQ3do4LDFv8"
    assert source_video("XQ3do4LDFv8.003") == "XQ3do4LDFv8"
    assert source_video("interview_17.mp4") == "interview_17.mp4"


def test_split_is_disjoint_by_source_video_and_augmented_copies_follow_their_source():
    rng = np.random.default_rng(0)
    videos = [f"{v:011d}" for v in range(40)]
    files = [f"{videos[rng.integers(40)]}.{s:03d}.mp4" for s in range(200)]
    # 100 augmented copies whose File was renamed: they must still follow their source clip
    aug_files = [f"copy_{i}.mp4" for i in range(100)]
    clips = make_clips(files + aug_files, ["none"] * 200 + ["shift5"] * 100, list(range(200)) + list(range(100)))
    manifest = make_split(clips, (0.6, 0.2, 0.2), seed=3)
    parts = split_indices(clips, manifest)
    check_disjoint(clips, parts)
    keys = group_keys(clips)
    sides = {k: name for name, idx in parts.items() for k in keys[idx]}
    for copy in range(200, 300):
        assert sides[keys[copy]] == sides[keys[copy - 200]]
    assert sum(len(v) for v in parts.values()) == 300
    assert make_split(clips, (0.6, 0.2, 0.2), seed=3) == manifest
    assert make_split(clips, (0.6, 0.2, 0.2), seed=4) != manifest


def test_split_rejects_data_from_unknown_videos():
    clips = make_clips([f"{v:011d}.000.mp4" for v in range(10)])
    manifest = make_split(clips, seed=0)
    other = make_clips(["zzzzzzzzzzz.000.mp4"])
    with pytest.raises(PerfexError, match="not in the split manifest"):
        split_indices(other, manifest)


def test_data_augmentation_script_output_loads_and_splits_with_copies_beside_their_source(tmp_path):
    from helpers import run_script
    from perfex.data.readers import load_clips
    from perfex.data.synth import generate_perfex, write_table

    source = tmp_path / "train.csv"
    write_table(generate_perfex(30, seed=2, min_frames=120, max_frames=260), source)
    out = tmp_path / "aug.csv.gz"
    result = run_script("data_augmentation.py", "--data", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    clips = load_clips([out], require_labels=True)
    original = clips.augmentation == "none"
    assert original.sum() == 30 and (clips.augmentation == "shift5").sum() == 30
    windows = sum((n // 100) for n in clips.lengths[original])
    assert len(clips) == 30 * 3 + windows
    parts = split_indices(clips, make_split(clips, (0.6, 0.2, 0.2), seed=1))
    check_disjoint(clips, parts)
    side = {int(clips.ids[i]): name for name, idx in parts.items() for i in idx}
    for i in np.flatnonzero(~original):
        assert side[int(clips.ids[i])] == side[int(clips.source_ids[i])]
    again = run_script("data_augmentation.py", "--data", str(source), "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr


def test_validation_and_test_score_original_clips_only(tmp_path):
    """Trained on augmented data, evaluation sides hold no augmented copies; the test report counts those set aside."""
    from perfex.evaluate.evaluation import evaluate_checkpoint
    from perfex.data.options import TestConfig, TrainConfig, build_config
    from perfex.data.prepare import originals_only_in_evaluation
    from perfex.data.synth import generate_perfex, write_table
    from perfex.train.loop import fit
    from perfex.data.readers import load_clips
    from perfex.data.augment import AugmentConfig, augment_files
    from perfex.checkpoint.io import read_config

    source = tmp_path / "train.csv"
    write_table(generate_perfex(40, seed=3, min_frames=120, max_frames=220), source)
    augmented = tmp_path / "aug.csv"
    augment_files([source], augmented, AugmentConfig())
    clips = load_clips([augmented], require_labels=True)
    parts = split_indices(clips, make_split(clips, (0.6, 0.2, 0.2), seed=0))
    kept, n_copies = originals_only_in_evaluation(clips, parts)
    assert (clips.augmentation[kept["val"]] == "none").all() and (clips.augmentation[kept["test"]] == "none").all()
    assert np.array_equal(kept["train"], parts["train"]) and n_copies == sum(
        int((clips.augmentation[parts[n]] != "none").sum()) for n in ("val", "test"))
    fit(build_config(TrainConfig, "cnn", data=[str(augmented)], out=str(tmp_path / "run"), epochs=1, device="cpu", progress=False))
    results = evaluate_checkpoint(build_config(TestConfig, "cnn", weights=str(tmp_path / "run"), out=str(tmp_path / "t"),
                                               n_boot=10, device="cpu", progress=False))
    assert "augmented copies of evaluation videos set aside" in results["evaluated_on"]
    recorded = split_indices(clips, read_config(tmp_path / "run" / "best.safetensors").split)["test"]
    assert results["n_test_clips"] == int((clips.augmentation[recorded] == "none").sum()) < len(recorded)
