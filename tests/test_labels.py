"""Label binning, labels tables (CSV, 2016 ChaLearn CSV, annotation pickle) and the restricted unpickler."""

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfex.core.errors import PerfexError
from perfex.data.labels import load_pickle_restricted, parse_quantile_edges, read_labels, scores_to_levels
from perfex.core.schema import TRAITS

from helpers import REAL

pytestmark = pytest.mark.unit

CHALEARN_2016 = ["VideoName", "ValueExtraversion", "ValueAgreeableness", "ValueConscientiousness", "ValueNeurotisicm",
                 "ValueOpenness"]


def needs_real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real sample {name} not available")
    return path


def ids(n: int) -> np.ndarray:
    return np.array([f"clip{i}" for i in range(n)], dtype=object)


def test_grid_scores_become_value_times_four():
    scores = np.array([[0, 0.25, 0.5, 0.75, 1.0], [1.0, 0.75 + 4e-7, 0.5 - 4e-7, 0.25, 0]])
    levels, binning = scores_to_levels(scores, None, ids(2))
    assert binning == "grid"
    assert levels.dtype == np.int64
    assert levels.tolist() == [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]


def test_off_grid_scores_without_binning_name_the_clip_trait_and_the_fix():
    scores = np.full((3, 5), 0.5)
    scores[1, 3] = 0.6
    with pytest.raises(PerfexError) as err:
        scores_to_levels(scores, None, ids(3))
    message = str(err.value)
    assert "clip1" in message and "conscientiousness" in message and "0.6" in message
    assert "--label-binning round|floor|quantile" in message


def test_round_and_floor_binning():
    column = np.array([0.0, 0.12, 0.125, 0.13, 0.37, 0.5, 0.62, 0.874, 0.88, 0.999, 1.0])
    scores = np.repeat(column[:, None], 5, axis=1)
    rounded, binning = scores_to_levels(scores, "round", ids(len(column)))
    assert binning == "round"
    assert rounded[:, 0].tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 4]
    floored, binning = scores_to_levels(scores, "floor", ids(len(column)))
    assert binning == "floor"
    assert floored[:, 0].tolist() == [0, 0, 0, 0, 1, 2, 2, 3, 3, 3, 4]


def test_quantile_binning_balances_levels_and_its_record_reproduces_them():
    rng = np.random.default_rng(0)
    scores = rng.beta(5, 5, size=(1000, 5))
    levels, binning = scores_to_levels(scores, "quantile", ids(1000))
    assert binning.startswith("quantile:extroversion=") and "openness=" in binning
    for t in range(5):
        counts = np.bincount(levels[:, t], minlength=5)
        assert counts.min() >= 190 and counts.max() <= 210, counts
    edges = parse_quantile_edges(binning)
    assert edges.shape == (5, 4)
    np.testing.assert_allclose(edges[0], np.quantile(scores[:, 0], [0.2, 0.4, 0.6, 0.8]), rtol=1e-5)
    again, recorded = scores_to_levels(scores, binning, ids(1000))
    assert recorded == binning
    np.testing.assert_array_equal(again, levels)
    # new data binned with recorded edges uses those edges, not its own quintiles
    shifted, _ = scores_to_levels(np.clip(scores + 0.3, 0, 1), binning, ids(1000))
    assert (shifted[:, 0] == 4).mean() > 0.8


@pytest.mark.parametrize("value, expected", [(np.nan, "openness is missing"), (1.2, "outside [0, 1]"),
                                             (-0.1, "outside [0, 1]")])
def test_missing_or_out_of_range_scores_name_the_clip(value, expected):
    scores = np.full((2, 5), 0.5)
    scores[1, 4] = value
    with pytest.raises(PerfexError, match="clip1") as err:
        scores_to_levels(scores, "round", ids(2))
    assert expected in str(err.value)


def test_unknown_binning_and_bad_recorded_edges_are_refused():
    with pytest.raises(PerfexError, match="unknown label binning"):
        scores_to_levels(np.full((1, 5), 0.5), "median", ids(1))
    with pytest.raises(PerfexError, match="not a recorded quantile binning"):
        scores_to_levels(np.full((1, 5), 0.5), "quantile:extroversion=0.1,0.2", ids(1))


def write_traits_csv(path: Path, names: list[str], columns: list[str], rng) -> np.ndarray:
    values = rng.random((len(names), 5)).round(6)
    frame = pd.DataFrame(values, columns=columns[1:])
    frame.insert(0, columns[0], names)
    frame.to_csv(path, index=False)
    return values


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_read_labels_csv_in_perfex_chalearn_and_2016_spellings(tmp_path, suffix):
    rng = np.random.default_rng(1)
    names = ["aaaaaaaaaaa.000.mp4", "bbbbbbbbbbb.003.mp4"]
    perfex = write_traits_csv(tmp_path / f"perfex{suffix}", names, ["File", *TRAITS], rng)
    chalearn = write_traits_csv(tmp_path / f"chalearn{suffix}", names, ["File", "extraversion", *TRAITS[1:]], rng)
    # 2016 order: extraversion, agreeableness, conscientiousness, neuroticism (misspelt), openness
    v2016 = write_traits_csv(tmp_path / f"v2016{suffix}", names, CHALEARN_2016, rng)
    for path, values, order in [("perfex", perfex, [0, 1, 2, 3, 4]), ("chalearn", chalearn, [0, 1, 2, 3, 4]),
                                ("v2016", v2016, [0, 3, 1, 2, 4])]:
        table = read_labels(tmp_path / f"{path}{suffix}")
        assert table.index.tolist() == names
        assert table.columns.tolist() == list(TRAITS)
        np.testing.assert_array_equal(table.to_numpy(), values[:, order])


def test_read_labels_annotation_pickle_ignores_interview(tmp_path):
    annotation = {trait: {"v1.000.mp4": np.float64(0.25 * i), "v2.001.mp4": np.float64(0.1)}
                  for i, trait in enumerate(["extraversion", "neuroticism", "agreeableness", "conscientiousness", "openness"])}
    annotation["interview"] = {"v1.000.mp4": np.float64(0.9), "v2.001.mp4": np.float64(0.9)}
    path = tmp_path / "annotation_training.pkl"
    path.write_bytes(pickle.dumps(annotation, protocol=4))  # numpy 2 pickles name numpy._core.multiarray.scalar
    table = read_labels(path)
    assert table.loc["v1.000.mp4"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert table.loc["v2.001.mp4"].tolist() == [0.1] * 5


def test_read_labels_errors(tmp_path):
    with pytest.raises(PerfexError, match="does not exist"):
        read_labels(tmp_path / "nope.csv")
    (tmp_path / "labels.txt").write_text("File,openness\n")
    with pytest.raises(PerfexError, match="must be a .csv, .csv.gz or ChaLearn annotation .pkl"):
        read_labels(tmp_path / "labels.txt")
    pd.DataFrame({"File": ["a.mp4"], "extroversion": [0.5]}).to_csv(tmp_path / "few.csv", index=False)
    with pytest.raises(PerfexError, match="lacks neuroticism, agreeableness, conscientiousness, openness"):
        read_labels(tmp_path / "few.csv")
    frame = pd.DataFrame({"File": ["a.mp4", "b.mp4"], **{t: ["0.5", "0.5"] for t in TRAITS}})
    frame.loc[1, "agreeableness"] = "high"
    frame.to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(PerfexError, match=r"row 2 \(file line 3\), column 'agreeableness' holds 'high'"):
        read_labels(tmp_path / "text.csv")
    frame.loc[1, "agreeableness"] = "0.5"
    frame.loc[1, "File"] = "a.mp4"
    frame.to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(PerfexError, match="'a.mp4' is listed more than once"):
        read_labels(tmp_path / "twice.csv")


class Exploit:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


def test_restricted_unpickler_refuses_code_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "annotation_training.pkl"
    path.write_bytes(pickle.dumps({"extraversion": Exploit(target)}, protocol=2))
    with pytest.raises(PerfexError) as err:
        read_labels(path)
    assert not target.exists()
    message = str(err.value)
    assert message.startswith(f"refusing to load {path}: the pickle imports ")
    assert "system, which a labels file never needs" in message


def test_restricted_unpickler_refuses_other_classes_and_garbage(tmp_path):
    path = tmp_path / "frame.pkl"
    path.write_bytes(pickle.dumps(pd.DataFrame({"a": [1]})))
    with pytest.raises(PerfexError, match="refusing to load .* the pickle imports pandas"):
        load_pickle_restricted(path)
    (tmp_path / "junk.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(PerfexError, match="could not be read as a ChaLearn annotation pickle"):
        load_pickle_restricted(tmp_path / "junk.pkl")


def test_real_annotation_pickle_and_2016_csv_hold_the_same_labels():
    pkl = read_labels(needs_real("fi_annotation_validation.pkl"))
    csv = read_labels(needs_real("fi_v1_validation_gt.csv"))
    assert len(pkl) == len(csv) == 2000
    assert pkl.columns.tolist() == list(TRAITS)
    assert set(pkl.index) == set(csv.index)
    assert all(name.endswith(".mp4") for name in pkl.index)
    # The 2016 CSV prints 17 significant digits, so every value round-trips exactly.
    np.testing.assert_array_equal(csv.loc[pkl.index].to_numpy(), pkl.to_numpy())
    assert ((pkl.to_numpy() >= 0) & (pkl.to_numpy() <= 1)).all()
    np.testing.assert_allclose(pkl["extroversion"].mean(), 0.477, atol=0.002)


def test_real_annotation_scores_need_binning_and_round_to_mostly_level_two():
    pkl = read_labels(needs_real("fi_annotation_validation.pkl"))
    with pytest.raises(PerfexError, match="--label-binning round\\|floor\\|quantile"):
        scores_to_levels(pkl.to_numpy(), None, pkl.index.to_numpy())
    levels, _ = scores_to_levels(pkl.to_numpy(), "round", pkl.index.to_numpy())
    share_of_level_two = (levels == 2).mean(axis=0)
    assert ((share_of_level_two > 0.54) & (share_of_level_two < 0.63)).all(), share_of_level_two
    assert ((levels == 0) | (levels == 4)).mean() < 0.012


def test_semicolon_labels_and_short_column_lists(tmp_path):
    table = pd.DataFrame({"File": ["a.mp4", "b.mp4"], **{trait: [0.25, 0.5] for trait in TRAITS}})
    table.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    assert read_labels(tmp_path / "semi.csv").loc["b.mp4", "openness"] == 0.5
    pd.DataFrame({f"c{i}": [1] for i in range(40)}).to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(PerfexError, match=r"\(found: c0, c1, c2, c3, c4, c5, \.\.\. \(\+34 more\)\)"):
        read_labels(tmp_path / "wide.csv")
