"""Labels of any --targets: binary, K-level (integer or grid coded) and continuous columns, read from PerFeX files,
labels tables and ChaLearn annotations, binned per target."""

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfex.core.errors import PerfexError
from perfex.core.schema import AU_INTENSITY_COLUMNS, TRAITS
from perfex.core.schema import BIG_FIVE, parse_targets
from perfex.data.labels import read_labels, recorded_quantile_edges, scores_to_levels
from perfex.data.readers import iter_clip_chunks, load_clips

from test_readers_folders import write_openface

pytestmark = pytest.mark.unit

VIDEOS = ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]


def write_long(path: Path, files: list[str], labels: dict[str, list] | None = None, frames: int = 3) -> Path:
    """A PerFeX long CSV: clip i (ID i + 1) of ``frames`` rows from video ``files[i]``, label columns per clip."""
    rows = np.repeat(np.arange(len(files)), frames)
    table = pd.DataFrame({"ID": rows + 1, "File": np.array(files)[rows]})
    for j, column in enumerate(AU_INTENSITY_COLUMNS):
        table[column] = (rows + j) / 10
    for name, values in (labels or {}).items():
        table[name] = np.array(values, dtype=object)[rows]
    table.to_csv(path, index=False)
    return path


def write_table(path: Path, columns: dict[str, list]) -> Path:
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_binary_column_from_a_labels_table(tmp_path):
    inputs = write_long(tmp_path / "clips.csv", VIDEOS)
    labels = write_table(tmp_path / "labels.csv", {"File": VIDEOS[::-1], "other": [9, 9, 9, 9], "deception": [1, 0, 0, 1]})
    targets = parse_targets("deception:2")
    clips = load_clips([inputs], labels=labels, targets=targets, require_labels=True)
    assert clips.targets == targets
    assert clips.levels.tolist() == [[1], [0], [0], [1]]
    assert clips.scores.tolist() == [[1.0], [0.0], [0.0], [1.0]]
    assert clips.label_binning == "grid"


def test_integer_levels_become_grid_values_and_continuous_scores_keep_their_units(tmp_path):
    inputs = write_long(tmp_path / "clips.csv", VIDEOS, {"stress": [0, 1, 2, 1], "score": [37.5, -2, 0.25, 1e3]})
    clips = load_clips([inputs], targets=parse_targets("stress:3,score:continuous"))
    assert clips.levels.tolist() == [[0, 0], [1, 0], [2, 0], [1, 0]]
    np.testing.assert_array_equal(clips.scores, [[0.0, 37.5], [0.5, -2.0], [1.0, 0.25], [0.5, 1000.0]])


def test_grid_coded_levels_and_big_five_traits_beside_new_targets(tmp_path):
    labels = {"extraversion": [0, 0.25, 1, 0.5], "stress": [0, 0.5, 1, 0.5]}
    inputs = write_long(tmp_path / "clips.csv", VIDEOS, labels)
    clips = load_clips([inputs], targets=parse_targets("extroversion,stress:3"))
    assert clips.levels.tolist() == [[0, 0], [1, 1], [4, 2], [2, 1]]
    chunks = list(iter_clip_chunks([inputs], chunk_rows=5, targets=parse_targets("extroversion,stress:3")))
    assert np.concatenate([c.clips.levels for c in chunks]).tolist() == clips.levels.tolist()


def test_a_column_the_file_lacks_is_filled_from_the_labels_table(tmp_path):
    inputs = write_long(tmp_path / "clips.csv", VIDEOS, {"stress": [0, 1, 2, 2]})
    labels = write_table(tmp_path / "labels.csv", {"VideoName": VIDEOS, "stress": [2, 2, 2, 2], "deception": [0, 1, 1, 0]})
    clips = load_clips([inputs], labels=labels, targets=parse_targets("stress:3,deception:2"))
    assert clips.levels.tolist() == [[0, 0], [1, 1], [2, 1], [2, 0]]  # stress from the file, deception from the table


def test_extractor_clips_take_new_targets_from_the_labels_table(tmp_path):
    write_openface(tmp_path / "in" / "talk.csv", 5)
    labels = write_table(tmp_path / "labels.csv", {"File": ["talk.mp4"], "deception": [1]})
    clips = load_clips([tmp_path / "in"], labels=labels, targets=parse_targets("deception:2"), require_labels=True)
    assert clips.files.tolist() == ["talk.mp4"] and clips.levels.tolist() == [[1]]


def test_unlabelled_clips_stay_minus_one_and_require_labels_names_the_targets(tmp_path):
    inputs = write_long(tmp_path / "clips.csv", VIDEOS, {"stress": [0, "", 2, 1]})
    clips = load_clips([inputs], targets=parse_targets("stress:3"))
    assert clips.levels.tolist() == [[0], [-1], [2], [1]]
    assert np.isnan(clips.scores[1, 0])
    with pytest.raises(PerfexError, match=r"1 of 4 clips have no labels, e\.g\. clip 2 \(b\.mp4\); fill the --targets "
                                          r"columns \(stress\)"):
        load_clips([inputs], targets=parse_targets("stress:3"), require_labels=True)


def test_quantile_binning_of_three_levels_round_trips_through_its_record():
    rng = np.random.default_rng(0)
    targets = parse_targets("stress:3,score:continuous,deception:2")
    scores = np.column_stack([rng.random(900), rng.normal(50, 10, 900), rng.random(900)])
    clip_ids = np.arange(900)
    levels, binning = scores_to_levels(scores, "quantile", clip_ids, targets)
    assert binning.startswith("quantile:stress=") and ";deception=" in binning and "score" not in binning
    assert np.bincount(levels[:, 0]).tolist() == [300, 300, 300]
    assert np.bincount(levels[:, 2]).tolist() == [450, 450]
    assert (levels[:, 1] == 0).all()
    edges = recorded_quantile_edges(binning, targets)
    assert [len(edges["stress"]), len(edges["deception"])] == [2, 1]
    np.testing.assert_allclose(edges["stress"], np.quantile(scores[:, 0], [1 / 3, 2 / 3]), rtol=1e-5)
    again, recorded = scores_to_levels(scores, binning, clip_ids, targets)
    assert recorded == binning
    np.testing.assert_array_equal(again, levels)
    with pytest.raises(PerfexError, match=r"not a recorded quantile binning .*stress \(K = 3\), deception \(K = 2\)"):
        scores_to_levels(scores, "quantile:stress=0.3,0.6;deception=0.2,0.5", clip_ids, targets)


def test_round_and_floor_bin_off_grid_values_into_k_levels():
    targets = parse_targets("stress:3")
    values = np.array([[0.2], [0.3], [0.74], [0.76], [1.0]])
    assert scores_to_levels(values, "round", np.arange(5), targets)[0][:, 0].tolist() == [0, 1, 1, 2, 2]
    assert scores_to_levels(values, "floor", np.arange(5), targets)[0][:, 0].tolist() == [0, 0, 1, 1, 2]
    with pytest.raises(PerfexError, match=r"clip 0 \(a\.mp4\): stress = 0\.2 is not on the level grid 0, 0\.5, 1 "
                                          r"\(4 clip\(s\) are off the grid\); pass --label-binning round"):
        scores_to_levels(values, None, np.arange(5), targets, files=np.array(["a.mp4", "b.mp4"] * 3))


def test_values_that_fit_no_level_name_the_clip_and_the_fix():
    targets = parse_targets("stress:3")
    with pytest.raises(PerfexError, match=r"clip 2: stress = 3 is not a label of a 3-level target; give integer levels "
                                          r"0\.\.2 or values k/2 in \[0, 1\]"):
        scores_to_levels(np.array([[0.0], [2.0], [3.0]]), None, np.arange(3), targets)
    with pytest.raises(PerfexError, match=r"clip 1: stress = -1 is not a label of a 3-level target"):
        scores_to_levels(np.array([[2.0], [-1.0]]), None, np.arange(2), targets)
    with pytest.raises(PerfexError, match=r"clip 0: score = inf is not a finite number"):
        scores_to_levels(np.array([[np.inf]]), None, np.arange(1), parse_targets("score:continuous"))


def test_a_missing_target_column_names_the_file_the_column_and_the_columns_found(tmp_path):
    inputs = write_long(tmp_path / "clips.csv", VIDEOS)
    labels = write_table(tmp_path / "labels.csv", {"File": VIDEOS, "deceit": [0, 1, 0, 1]})
    with pytest.raises(PerfexError) as err:
        load_clips([inputs], labels=labels, targets=parse_targets("deception:2"))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"labels file {labels} lacks deception (found: File, deceit); a labels CSV needs File (or "
                              "VideoName) and a column named as each --targets label (deception)")


def test_a_malformed_cell_names_the_file_row_and_column(tmp_path):
    labels = write_table(tmp_path / "labels.csv", {"File": VIDEOS, "stress": ["0", "1", "high", "2"]})
    with pytest.raises(PerfexError, match=r"labels\.csv: row 3 \(file line 4\), column 'stress' holds 'high', not a "
                                          r"number; labels must be numbers"):
        read_labels(labels, parse_targets("stress:3"))


def test_a_partly_missing_row_names_the_column_the_clip_and_the_row(tmp_path):
    inputs = write_long(tmp_path / "clips.csv", VIDEOS)
    labels = write_table(tmp_path / "labels.csv", {"File": VIDEOS, "deception": [0, 1, 1, 0], "stress": [0, 1, "", 2]})
    with pytest.raises(PerfexError, match=r"labels\.csv: row 3 \(file line 4\) of video 'c\.mp4' has no 'stress' label "
                                          r"while clip 3 has its other --targets labels"):
        load_clips([inputs], labels=labels, targets=parse_targets("deception:2,stress:3"))
    partial = write_long(tmp_path / "partial.csv", VIDEOS, {"deception": [0, 1, 1, 0], "stress": [0, 1, "", 2]})
    with pytest.raises(PerfexError, match=r"clip 3 \(c\.mp4\): column 'stress' has no label while the clip's other "
                                          r"--targets columns do"):
        load_clips([partial], targets=parse_targets("deception:2,stress:3"))


def test_chalearn_labels_offer_interview(tmp_path):
    annotation = {trait: {"v1.mp4": 0.5, "v2.mp4": 0.25} for trait in ("extraversion", *TRAITS[1:])}
    annotation["interview"] = {"v1.mp4": 0.75, "v2.mp4": 0.125}
    path = tmp_path / "annotation.pkl"
    path.write_bytes(pickle.dumps(annotation, protocol=2))
    assert read_labels(path, parse_targets("interview:continuous,extroversion")).to_numpy().tolist() == [[0.75, 0.5],
                                                                                                        [0.125, 0.25]]
    v2016 = write_table(tmp_path / "gt.csv", {"VideoName": ["v1.mp4"], "ValueInterview": [0.6], "ValueOpenness": [0.4]})
    assert read_labels(v2016, parse_targets("interview,openness")).loc["v1.mp4"].tolist() == [0.6, 0.4]
    with pytest.raises(PerfexError, match=r"lacks the labels deception: a ChaLearn annotation pickle"):
        read_labels(path, parse_targets("deception:2"))


def test_the_default_targets_are_the_big_five(tmp_path):
    labels = {trait: [0.5, 0.25, 0, 1] for trait in TRAITS}
    inputs = write_long(tmp_path / "clips.csv", VIDEOS, labels)
    default, explicit = load_clips([inputs]), load_clips([inputs], targets=BIG_FIVE)
    assert default.targets == BIG_FIVE and default.levels.tolist() == explicit.levels.tolist()
    assert default.levels[:, 0].tolist() == [2, 1, 0, 4]
    assert read_labels(write_table(tmp_path / "t.csv", {"File": ["x"], **{t: [0.5] for t in TRAITS}, "stress": [1]})
                       ).columns.tolist() == list(TRAITS)


def test_the_cache_keeps_each_targets_parse_apart(tmp_path):
    labels = {"stress": [0, 1, 2, 1], **{trait: [0.5] * 4 for trait in TRAITS}}
    inputs = write_long(tmp_path / "clips.csv", VIDEOS, labels)
    stress = parse_targets("stress:3")
    for _ in range(2):  # parsed, then read back from the cache
        clips = load_clips([inputs], cache_dir=tmp_path / "cache", targets=stress)
        assert clips.targets == stress and clips.levels.tolist() == [[0], [1], [2], [1]]
        big_five = load_clips([inputs], cache_dir=tmp_path / "cache")
        assert big_five.targets == BIG_FIVE and big_five.levels.tolist() == [[2] * 5] * 4
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
