"""Folders as people keep them: side files skipped and counted, unique clip names, any-case suffixes, broken files."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfex.core.errors import PerfexError
from perfex.data.readers import ReadOptions, Unreadable, expand_inputs, find_inputs, iter_clip_chunks, load_clips
from perfex.core.schema import AU_INTENSITY_COLUMNS, TRAITS

pytestmark = pytest.mark.unit


def write_openface(path: Path, n_frames: int, value: float = 0.5) -> None:
    """A small OpenFace 2 FeatureExtraction CSV (', ' separators); every AU is ``value``."""
    columns = ["frame", "face_id", "timestamp", "confidence", "success", *AU_INTENSITY_COLUMNS]
    lines = [", ".join(columns)]
    lines += [", ".join([str(i + 1), "0", f"{i / 30:.3f}", "0.98", "1", *[f"{value}"] * 17]) for i in range(n_frames)]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if path.name.lower().endswith(".gz") else text.encode())


def labels_csv(path: Path, names: list[str], score: float = 0.5) -> Path:
    pd.DataFrame({"File": names, **{t: [score] * len(names) for t in TRAITS}}).to_csv(path, index=False)
    return path


def test_folder_with_side_files_reads_only_extractor_outputs(tmp_path):
    write_openface(tmp_path / "a.csv", 3)
    write_openface(tmp_path / "b.csv", 4)
    labels_csv(tmp_path / "labels.csv", ["a.mp4", "b.mp4"])
    (tmp_path / "a_of_details.txt").write_text("Input:a.avi\n")
    (tmp_path / "a.hog").write_bytes(b"\x00\x01")
    (tmp_path / "a_aligned").mkdir()
    (tmp_path / "a_aligned" / "frame_det_00_000001.bmp").write_bytes(b"BM")
    notices = []
    clips = load_clips([tmp_path], ReadOptions(notify=notices.append))
    assert clips.ids.tolist() == ["a", "b"] and clips.lengths.tolist() == [3, 4]
    assert notices == ["notice: skipped 4 entries in the input folder(s) that are not AU extractor outputs: "
                       "a.hog, a_aligned/, a_of_details.txt, labels.csv"]
    chunks = list(iter_clip_chunks([tmp_path], ReadOptions(notify=notices.append)))
    assert [c.clips.ids.tolist() for c in chunks] == [["a", "b"]]  # one row per OpenFace file for deploy
    labelled = load_clips([tmp_path], ReadOptions(notify=notices.append), labels=tmp_path / "labels.csv",
                          require_labels=True)
    assert labelled.files.tolist() == ["a.mp4", "b.mp4"]


def test_repeated_stems_in_nested_folders_get_relative_names(tmp_path):
    write_openface(tmp_path / "session1" / "participant01.csv", 2, 1.0)
    write_openface(tmp_path / "session2" / "participant01.csv", 3, 2.0)
    write_openface(tmp_path / "session2" / "participant02.csv", 4, 3.0)
    clips = load_clips([tmp_path])
    assert clips.ids.tolist() == ["session1/participant01", "session2/participant01", "participant02"]
    assert clips.lengths.tolist() == [2, 3, 4]
    table = labels_csv(tmp_path.parent / f"{tmp_path.name}_labels.csv",
                       ["session1/participant01", "session2/participant01.mp4", "session2/participant02"])
    labelled = load_clips([tmp_path], labels=table, require_labels=True)  # either the relative or the bare name
    assert labelled.files.tolist() == ["session1/participant01", "session2/participant01.mp4", "session2/participant02"]


def test_suffixes_match_in_any_case(tmp_path):
    write_openface(tmp_path / "clipA.CSV", 2)
    write_openface(tmp_path / "clipB.Csv.GZ", 3)
    assert expand_inputs([tmp_path]) == [tmp_path / "clipA.CSV", tmp_path / "clipB.Csv.GZ"]
    clips = load_clips([tmp_path])
    assert clips.ids.tolist() == ["clipA", "clipB"] and clips.lengths.tolist() == [2, 3]


@pytest.mark.parametrize("name, content, reason", [
    ("crashed.csv", b"", r"crashed\.csv is empty"),
    ("latin.csv", "frame, success, AU01_r\n1, 1, caf\u00e9\n".encode("latin-1"), r"latin\.csv is not UTF-8 text"),
    ("cut.csv.gz", gzip.compress(b"frame, timestamp, success\n" * 50, mtime=0)[:30], r"cut\.csv\.gz could not be read"),
])
def test_an_unreadable_file_among_good_ones(tmp_path, name, content, reason):
    write_openface(tmp_path / "good1.csv", 3)
    (tmp_path / name).write_bytes(content)
    write_openface(tmp_path / "good2.csv", 2)
    with pytest.raises(PerfexError, match=reason):  # train and test refuse it, naming the file
        load_clips([tmp_path])
    chunks = list(iter_clip_chunks([tmp_path], ReadOptions(tolerate_unreadable=True), chunk_rows=2))
    assert [clip_id for c in chunks for clip_id in c.clips.ids.tolist()] == ["good1", "good2"]
    unreadable = [u for c in chunks for u in c.unreadable]
    stem = name.split(".")[0]
    assert len(unreadable) == 1 and isinstance(unreadable[0], Unreadable)
    assert (unreadable[0].id, unreadable[0].file) == (stem, str(tmp_path / name))
    assert "\n" not in unreadable[0].reason


def test_truncated_openface_row_is_recorded_in_tolerant_reads(tmp_path):
    write_openface(tmp_path / "cut.csv", 4)
    text = (tmp_path / "cut.csv").read_text()
    (tmp_path / "cut.csv").write_text(text[: len(text) - 20])
    chunks = list(iter_clip_chunks([tmp_path], ReadOptions(tolerate_unreadable=True)))
    assert [u.id for c in chunks for u in c.unreadable] == ["cut"]
    assert "line 5 has" in chunks[0].unreadable[0].reason


def test_semicolon_and_tab_files_are_read(tmp_path):
    table = pd.DataFrame({"ID": [1, 1, 2], "File": ["a.mp4", "a.mp4", "b.mp4"],
                          **{c: [0.5, 1.5, 2.5] for c in AU_INTENSITY_COLUMNS}})
    table.to_csv(tmp_path / "comma.csv", index=False)
    table.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    table.to_csv(tmp_path / "tab.csv", index=False, sep="\t")
    comma = load_clips([tmp_path / "comma.csv"])
    for name in ("semi.csv", "tab.csv"):
        np.testing.assert_array_equal(load_clips([tmp_path / name]).features, comma.features)
    table.to_csv(tmp_path / "decimal.csv", index=False, sep=";", decimal=",")
    with pytest.raises(PerfexError, match=r"holds '0,5', not a number \(the file is semicolon-separated; if it writes "
                                          r"decimals with a comma, convert it to '\.' decimals\)"):
        load_clips([tmp_path / "decimal.csv"])


def test_error_column_lists_fit_on_a_line(tmp_path):
    wide = pd.DataFrame({f"landmark_{i}": [0.0] for i in range(700)})
    wide.to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(PerfexError) as err:
        load_clips([tmp_path / "wide.csv"])
    message = str(err.value)
    assert "landmark_0, landmark_1, landmark_2, landmark_3, landmark_4, landmark_5, ... (+694 more)" in message
    assert len(message) < 400
    write_openface(tmp_path / "of.csv", 2)
    many = tuple(f"x_{i}" for i in range(60))
    with pytest.raises(PerfexError, match=r"lacks the column\(s\) x_0, x_1, x_2, x_3, x_4, x_5, \.\.\. \(\+54 more\)"):
        load_clips([tmp_path / "of.csv"], features=many)


def test_a_folder_of_side_files_only_is_an_error(tmp_path):
    labels_csv(tmp_path / "labels.csv", ["a.mp4"])
    with pytest.raises(PerfexError, match=r"no AU extractor output or PerFeX CSV among the inputs \(skipped labels\.csv\)"):
        find_inputs([tmp_path])
