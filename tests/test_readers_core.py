"""Readers: PerFeX long CSVs and OpenFace CSVs into one ClipSet, validation messages, streaming and the cache."""

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import perfex.data.readers.parsers.openface
import perfex.data.readers.parsers.perfex_long
from perfex.core.errors import PerfexError
from perfex.data.readers import ReadOptions, detect_format, expand_inputs, iter_clip_chunks, load_clips
from perfex.data.readers.parsers.arrowcsv import fits_one_chunk
from perfex.data.readers.formats import FORMATS
from perfex.core.schema import AU_INTENSITY_COLUMNS, AU_PRESENCE_COLUMNS, CONTEXT_COLUMNS, EMOTION_COLUMNS, FPS, TRAITS

from helpers import REAL

pytestmark = pytest.mark.unit

AUS = list(AU_INTENSITY_COLUMNS)


def needs_real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real sample {name} not available")
    return path


def au_value(clip_id, frame, column: int) -> float:
    """A value that says where it came from, so regrouping mistakes show."""
    return (clip_id % 50) * 0.1 + frame * 0.001 + column * 0.00001


def perfex_frame(ids_per_row, labels: dict | None = None, extras: bool = True) -> pd.DataFrame:
    """A PerFeX long table with rows in the given ID order; AU values encode (clip, frame-within-clip, column)."""
    ids_per_row = np.asarray(ids_per_row)
    frame_index = np.zeros(len(ids_per_row), dtype=int)
    for clip_id in np.unique(ids_per_row):
        rows = ids_per_row == clip_id
        frame_index[rows] = np.arange(rows.sum())
    table = pd.DataFrame({"ID": ids_per_row, "File": [f"vid{i:08d}.000.mp4" for i in ids_per_row]})
    for j, column in enumerate(AUS):
        table[column] = au_value(ids_per_row, frame_index, j)
    if extras:
        for column in AU_PRESENCE_COLUMNS:
            table[column] = 1
        table["Word"] = "hello"
        for column in CONTEXT_COLUMNS[1:] + EMOTION_COLUMNS:
            table[column] = 0.5
    if labels is not None:
        for t, trait in enumerate(TRAITS):
            table[trait] = [labels[i][t] for i in ids_per_row]
    return table


def expected_clip(clip_id, n_frames: int) -> np.ndarray:
    frames = np.arange(n_frames)[:, None]
    return au_value(clip_id, frames, np.arange(len(AUS))[None, :]).astype(np.float32)


def write_openface(path: Path, n_frames: int, *, face_id: bool = True, success=None, confidence=None) -> None:
    """An OpenFace 2 FeatureExtraction-style CSV at 30 fps: ', ' separators (names with a leading space), gaze/pose
    columns; every AU of frame i is i / 10."""
    success = np.ones(n_frames, dtype=int) if success is None else np.asarray(success)
    confidence = np.full(n_frames, 0.98) if confidence is None else np.asarray(confidence)
    columns = ["frame", *(["face_id"] if face_id else []), "timestamp", "confidence", "success", "gaze_angle_x", "pose_Tx",
               *AUS, *AU_PRESENCE_COLUMNS]
    lines = [", ".join(columns)]
    for i in range(n_frames):
        row = [str(i + 1), *(["0"] if face_id else []), f"{i / 30:.3f}", f"{confidence[i]:.2f}", str(success[i]), "0.1",
               "12.5", *([f"{i / 10:.2f}"] * len(AUS)), *(["1"] * len(AU_PRESENCE_COLUMNS))]
        lines.append(", ".join(row))
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)


ON_GRID = {7: [0.25, 0.5, 0.75, 1.0, 0.0], 3: [0.5, 0.5, 0.5, 0.5, 0.5], 9: [1.0, 0.75, 0.0, 0.25, 0.5]}


def test_perfex_reader_groups_in_order_of_first_appearance(tmp_path):
    ids = [7, 7, 3, 7, 9, 3, 3, 7, 9]  # not contiguous: grouping must collect each clip's rows in file order
    path = tmp_path / "train.csv"
    perfex_frame(ids, ON_GRID).to_csv(path, index=False)
    clips = load_clips([path])
    assert clips.ids.tolist() == [7, 3, 9]
    assert clips.lengths.tolist() == [4, 3, 2]
    assert clips.files.tolist() == ["vid00000007.000.mp4", "vid00000003.000.mp4", "vid00000009.000.mp4"]
    for k, clip_id in enumerate([7, 3, 9]):
        np.testing.assert_allclose(clips.clip(k), expected_clip(clip_id, clips.lengths[k]), rtol=1e-6)
        np.testing.assert_allclose(clips.clip_times(k), np.arange(clips.lengths[k]) / FPS, rtol=1e-6)
        assert clips.levels[k].tolist() == [int(v * 4) for v in ON_GRID[clip_id]]
    assert clips.features.dtype == np.float32 and clips.features.flags.c_contiguous
    assert clips.feature_names == AU_INTENSITY_COLUMNS
    assert clips.label_binning == "grid" and clips.has_labels
    assert clips.origin == [str(path)]
    assert clips.dropped_frames.tolist() == [0, 0, 0]
    assert clips.augmentation.tolist() == ["none"] * 3 and clips.source_ids.tolist() == [7, 3, 9]


def test_perfex_features_order_follows_the_request(tmp_path):
    path = tmp_path / "train.csv"
    perfex_frame([1, 1, 2], extras=False).to_csv(path, index=False)
    clips = load_clips([path], features=("AU45_r", "AU01_r"))
    assert clips.feature_names == ("AU45_r", "AU01_r")
    np.testing.assert_allclose(clips.clip(0), expected_clip(1, 2)[:, [16, 0]], rtol=1e-6)


def test_provenance_columns_fill_source_ids_and_augmentation(tmp_path):
    table = perfex_frame([1, 1, 5, 5, 6], extras=False)
    table["source_id"] = [1, 1, 1, 1, None]
    table["augmentation"] = [None, None, "shift5", "shift5", None]
    table.to_csv(tmp_path / "aug.csv", index=False)
    clips = load_clips([tmp_path / "aug.csv"])
    assert clips.source_ids.tolist() == [1, 1, 6]
    assert clips.augmentation.tolist() == ["none", "shift5", "none"]


@pytest.mark.parametrize("how", ["no trait columns", "empty trait columns"])
def test_unlabelled_perfex_clips(tmp_path, how):
    table = perfex_frame([1, 1, 2])
    if how == "empty trait columns":
        for trait in TRAITS:
            table[trait] = np.nan
    table.to_csv(tmp_path / "deploy.csv", index=False)
    clips = load_clips([tmp_path / "deploy.csv"])
    assert (clips.levels == -1).all() and np.isnan(clips.scores).all()
    assert not clips.has_labels and clips.label_binning is None
    with pytest.raises(PerfexError, match=r"2 of 2 clips have no labels, e\.g\. clip 1 .*--labels"):
        load_clips([tmp_path / "deploy.csv"], require_labels=True)


def test_chalearn_trait_spelling_is_accepted_in_perfex_files(tmp_path):
    table = perfex_frame([4, 4], {4: [0.75, 0.5, 0.5, 0.5, 0.5]}).rename(columns={"extroversion": "extraversion"})
    table.to_csv(tmp_path / "a.csv", index=False)
    assert load_clips([tmp_path / "a.csv"]).levels.tolist() == [[3, 2, 2, 2, 2]]


def test_labels_must_be_constant_within_a_clip(tmp_path):
    table = perfex_frame([1, 1, 2, 2, 2], {1: [0.5] * 5, 2: [0.5] * 5})
    table.loc[4, "neuroticism"] = 0.75
    table.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(PerfexError) as err:
        load_clips([tmp_path / "a.csv"])
    message = str(err.value)
    assert "clip 2 changes its neuroticism from 0.5 at row 3 (file line 4) to 0.75 at row 5 (file line 6)" in message
    assert "a.csv" in message


def test_partial_labels_and_off_grid_labels_are_errors(tmp_path):
    table = perfex_frame([1, 2], {1: [0.5] * 5, 2: [0.5, 0.5, np.nan, 0.5, 0.5]})
    table.to_csv(tmp_path / "partial.csv", index=False)
    with pytest.raises(PerfexError, match="clip 2: agreeableness is missing"):
        load_clips([tmp_path / "partial.csv"])
    perfex_frame([1, 2], {1: [0.5] * 5, 2: [0.55] * 5}).to_csv(tmp_path / "raw.csv", index=False)
    with pytest.raises(PerfexError, match="clip 2: extroversion = 0.55 .*--label-binning round\\|floor\\|quantile"):
        load_clips([tmp_path / "raw.csv"])
    clips = load_clips([tmp_path / "raw.csv"], label_binning="round")
    assert clips.label_binning == "round" and clips.levels.tolist() == [[2] * 5, [2] * 5]
    np.testing.assert_allclose(clips.scores[1], 0.55)


def test_gzip_input_reads_the_same(tmp_path):
    table = perfex_frame([1, 1, 2, 3, 3, 3], {1: [0.0] * 5, 2: [0.25] * 5, 3: [1.0] * 5})
    table.to_csv(tmp_path / "a.csv", index=False)
    table.to_csv(tmp_path / "b.csv.gz", index=False)
    plain, packed = load_clips([tmp_path / "a.csv"]), load_clips([tmp_path / "b.csv.gz"])
    np.testing.assert_array_equal(plain.features, packed.features)
    np.testing.assert_array_equal(plain.levels, packed.levels)
    assert packed.origin == [str(tmp_path / "b.csv.gz")]


def set_cell(row: int, column: str, value):
    def edit(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[row, column] = value
        return table
    return edit


def drop(*columns: str):
    return lambda table: table.drop(columns=list(columns))


@pytest.mark.parametrize("edit, expected", [
    (drop("AU04_r", "AU45_r"), r"bad\.csv lacks the column\(s\) AU04_r, AU45_r"),
    (set_cell(2, "AU02_r", "abc"), r"bad\.csv: row 3 \(file line 4\), column 'AU02_r' holds 'abc', not a number"),
    (set_cell(1, "AU07_r", np.nan), r"bad\.csv: row 2 \(file line 3\), column 'AU07_r' is NaN or empty; pass --nan"),
    (set_cell(4, "AU09_r", "inf"), r"bad\.csv: row 5 \(file line 6\), column 'AU09_r' is inf"),
    (set_cell(3, "ID", "2.5"), r"row 4 \(file line 5\), column 'ID' holds '2.5', not an integer clip ID"),
    (set_cell(3, "ID", None), r"row 4 \(file line 5\) has no ID"),
    (drop("ID"), r"bad\.csv has no 'ID' column"),
    (drop("File"), r"bad\.csv has no 'File' column"),
    (set_cell(0, "File", None), r"row 1 \(file line 2\) has no File"),
])
def test_validation_messages_name_file_row_and_column(tmp_path, edit, expected):
    table = perfex_frame([1, 1, 1, 2, 2], {1: [0.5] * 5, 2: [0.5] * 5}).astype({c: object for c in ["ID", "File", *AUS]})
    path = tmp_path / "bad.csv"
    edit(table).to_csv(path, index=False)
    with pytest.raises(PerfexError, match=expected):
        load_clips([path])


def test_truncated_line_is_reported_with_its_line_number(tmp_path):
    path = tmp_path / "cut.csv"
    perfex_frame([1, 1, 2]).to_csv(path, index=False)
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind(",")])
    with pytest.raises(PerfexError, match=r"cut\.csv: line 4 has \d+ fields but the header has \d+"):
        load_clips([path])


def test_unreadable_files_are_refused(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(PerfexError, match=r"empty\.csv is empty"):
        load_clips([tmp_path / "empty.csv"])
    (tmp_path / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)))
    with pytest.raises(PerfexError, match=r"image\.csv is not a CSV text file \(it holds binary data\)"):
        load_clips([tmp_path / "image.csv"])
    (tmp_path / "fake.csv.gz").write_text("ID,File\n1,a\n")
    with pytest.raises(PerfexError, match=r"fake\.csv\.gz could not be read .*valid gzip"):
        load_clips([tmp_path / "fake.csv.gz"])
    (tmp_path / "header.csv").write_text(",".join(["ID", "File", *AUS]) + "\n")
    with pytest.raises(PerfexError, match=r"header\.csv has a header but no data rows"):
        load_clips([tmp_path / "header.csv"])


def test_expand_inputs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ["d/b.csv", "d/sub/a.csv.gz", "d/notes.txt", "c.csv"]:
        (tmp_path / name).write_text("ID,File,AU01_r\n")
    assert expand_inputs([tmp_path / "d", tmp_path / "c.csv"]) == [
        tmp_path / "d" / "b.csv", tmp_path / "d" / "sub" / "a.csv.gz", tmp_path / "c.csv"]
    with pytest.raises(PerfexError, match=r"missing\.csv does not exist"):
        expand_inputs([tmp_path / "missing.csv"])
    (tmp_path / "none").mkdir()
    with pytest.raises(PerfexError, match=r"none holds no \.csv or \.csv\.gz file"):
        expand_inputs([tmp_path / "none"])


def test_ids_must_be_unique_across_files(tmp_path):
    perfex_frame([1, 2]).to_csv(tmp_path / "a.csv", index=False)
    perfex_frame([3, 2]).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(PerfexError, match=r"clip ID 2 appears in both .*a\.csv and .*b\.csv"):
        load_clips([tmp_path / "a.csv", tmp_path / "b.csv"])


def test_nan_policies(tmp_path):
    table = perfex_frame([1, 1, 1, 1, 2, 2, 2])
    table.loc[[0, 2], "AU01_r"] = np.nan  # clip 1: frames 0 and 2 missing
    table.loc[6, "AU45_r"] = np.inf  # clip 2: last frame
    table.to_csv(tmp_path / "gaps.csv", index=False)
    dropped = load_clips([tmp_path / "gaps.csv"], nan_policy="drop-frames")
    assert dropped.lengths.tolist() == [2, 2] and dropped.dropped_frames.tolist() == [2, 1]
    np.testing.assert_allclose(dropped.clip(0), expected_clip(1, 4)[[1, 3]], rtol=1e-6)
    np.testing.assert_allclose(dropped.clip_times(0), np.array([1, 3]) / FPS, rtol=1e-6)
    filled = load_clips([tmp_path / "gaps.csv"], nan_policy="interpolate")
    assert filled.lengths.tolist() == [4, 3] and filled.dropped_frames.tolist() == [0, 0]
    want = expected_clip(1, 4)[:, 0]
    # frame 0: edge-filled from frame 1; frame 2: halfway between frames 1 and 3
    np.testing.assert_allclose(filled.clip(0)[:, 0], [want[1], want[1], (want[1] + want[3]) / 2, want[3]], rtol=1e-6)
    np.testing.assert_allclose(filled.clip(1)[2, 16], expected_clip(2, 3)[1, 16], rtol=1e-6)
    with pytest.raises(PerfexError, match="--nan .* is not one of error, drop-frames, interpolate"):
        load_clips([tmp_path / "gaps.csv"], nan_policy="zero")
    table.loc[:3, "AU01_r"] = np.nan
    table.to_csv(tmp_path / "hole.csv", index=False)
    with pytest.raises(PerfexError, match="clip 1 has no finite AU01_r value to interpolate from"):
        load_clips([tmp_path / "hole.csv"], nan_policy="interpolate")


def test_openface_reader(tmp_path):
    path = tmp_path / "abcdefghijk.001.csv"
    success = [0, 1, 1, 1, 1, 1]
    confidence = [0.9, 0.9, 0.5, 0.95, 0.95, 0.95]
    write_openface(path, 6, success=success, confidence=confidence)
    assert detect_format(path) == "openface"
    clips = load_clips([path])
    assert clips.ids.tolist() == ["abcdefghijk.001"] and clips.files.tolist() == ["abcdefghijk.001.mp4"]
    assert clips.lengths.tolist() == [4] and clips.dropped_frames.tolist() == [2]
    np.testing.assert_allclose(clips.clip(0)[:, 0], [0.1, 0.3, 0.4, 0.5], rtol=1e-6)
    # times count from the first kept frame (timestamp 0.033)
    np.testing.assert_allclose(clips.clip_times(0), [0.0, 0.067, 0.1, 0.134], atol=1e-6)
    assert (clips.levels == -1).all()
    looser = load_clips([path], min_confidence=0.4)
    assert looser.lengths.tolist() == [5] and looser.dropped_frames.tolist() == [1]


def test_openface_without_face_id_gzipped_and_zero_frame_clip(tmp_path):
    write_openface(tmp_path / "one.csv.gz", 3, face_id=False)
    write_openface(tmp_path / "failed.csv", 4, success=[0, 0, 0, 0])
    clips = load_clips([tmp_path])
    assert clips.ids.tolist() == ["failed", "one"]
    assert clips.lengths.tolist() == [0, 3] and clips.dropped_frames.tolist() == [4, 0]
    assert clips.times.dtype == np.float32 and clips.features.shape == (3, 17)


def test_openface_several_faces_become_one_clip_each(tmp_path):
    path = tmp_path / "multi.csv"
    write_openface(path, 4)
    path.write_text(path.read_text().replace("\n3, 0, ", "\n3, 1, "))
    notices = []
    clips = load_clips([path], ReadOptions(notify=notices.append))
    assert clips.ids.tolist() == ["multi#face0", "multi#face1"] and clips.lengths.tolist() == [3, 1]
    np.testing.assert_allclose(clips.clip(1)[:, 0], [0.2])
    assert clips.clip_times(1).tolist() == [0.0]
    assert notices == [FORMATS["openface"].notice]


def test_openface_missing_aus_named(tmp_path):
    path = tmp_path / "v.csv"
    write_openface(path, 2)
    lines = path.read_text().replace(" AU12_r,", " AU12_x,")
    path.write_text(lines)
    with pytest.raises(PerfexError, match=r"v\.csv lacks the column\(s\) AU12_r"):
        load_clips([path])


def test_openface_labels_table_matches_names_with_or_without_extension(tmp_path):
    write_openface(tmp_path / "aaaaaaaaaaa.000.csv", 3)
    write_openface(tmp_path / "bbbbbbbbbbb.004.csv", 3)
    write_openface(tmp_path / "ccccccccccc.002.csv", 3)
    labels = pd.DataFrame({"File": ["aaaaaaaaaaa.000.mp4", "bbbbbbbbbbb.004.avi"],
                           **{t: [0.52, 0.14] for t in TRAITS}})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    data = [tmp_path / f"{v * 11}.{s}.csv" for v, s in (("a", "000"), ("b", "004"), ("c", "002"))]
    clips = load_clips(data, labels=tmp_path / "labels.csv", label_binning="round")
    assert clips.files.tolist() == ["aaaaaaaaaaa.000.mp4", "bbbbbbbbbbb.004.avi", "ccccccccccc.002.mp4"]
    assert clips.levels.tolist() == [[2] * 5, [1] * 5, [-1] * 5]
    assert clips.label_binning == "round"
    with pytest.raises(PerfexError, match=r"1 of 3 clips have no labels, e\.g\. clip ccccccccccc\.002"):
        load_clips(data, labels=tmp_path / "labels.csv", label_binning="round", require_labels=True)


def test_mixed_perfex_and_openface_inputs(tmp_path):
    perfex_frame([5, 5, 6], {5: [0.5] * 5, 6: [0.25] * 5}).to_csv(tmp_path / "long.csv", index=False)
    write_openface(tmp_path / "zzzzzzzzzzz.000.csv", 4)
    pd.DataFrame({"File": ["zzzzzzzzzzz.000.mp4"], **{t: [1.0] for t in TRAITS}}).to_csv(tmp_path / "l.csv", index=False)
    clips = load_clips([tmp_path / "long.csv", tmp_path / "zzzzzzzzzzz.000.csv"], labels=tmp_path / "l.csv",
                       require_labels=True)
    assert clips.ids.tolist() == [5, 6, "zzzzzzzzzzz.000"]
    assert clips.lengths.tolist() == [2, 1, 4]
    assert clips.levels[:, 0].tolist() == [2, 1, 4]
    assert clips.origin == [str(tmp_path / "long.csv"), str(tmp_path / "zzzzzzzzzzz.000.csv")]


def test_labels_table_fills_unlabelled_perfex_clips_and_quantile_binning_is_recorded(tmp_path):
    perfex_frame(np.repeat(np.arange(10), 3)).to_csv(tmp_path / "deploy.csv", index=False)
    scores = np.linspace(0.05, 0.95, 10)
    names = [f"vid{i:08d}.000.mp4" for i in range(10)]
    pd.DataFrame({"File": names, **{t: scores for t in TRAITS}}).to_csv(tmp_path / "labels.csv", index=False)
    clips = load_clips([tmp_path / "deploy.csv"], labels=tmp_path / "labels.csv", label_binning="quantile")
    assert clips.label_binning.startswith("quantile:extroversion=0.23,0.41,0.59,0.77;")
    assert clips.levels[:, 2].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    again = load_clips([tmp_path / "deploy.csv"], labels=tmp_path / "labels.csv", label_binning=clips.label_binning)
    np.testing.assert_array_equal(again.levels, clips.levels)
    with pytest.raises(PerfexError, match="unknown --label-binning 'ceil'"):
        load_clips([tmp_path / "deploy.csv"], label_binning="ceil")


def test_iter_clip_chunks_yields_the_clips_of_load_clips(tmp_path):
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 40, size=60)
    ids = np.repeat(rng.permutation(1000)[:60], lengths)
    labels = {int(i): rng.integers(0, 5, 5) / 4 for i in np.unique(ids)}
    path = tmp_path / "big.csv.gz"
    perfex_frame(ids, labels).to_csv(path, index=False)
    write_openface(tmp_path / "open.csv", 7)
    whole = load_clips([path, tmp_path / "open.csv"])
    chunks = [chunk.clips for chunk in iter_clip_chunks([path, tmp_path / "open.csv"], chunk_rows=200)]
    assert len(chunks) > 3
    assert max(len(c.features) for c in chunks[:-1]) < 200 + 2 * lengths.max()
    assert all(c.origin for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.ids for c in chunks]), whole.ids)
    np.testing.assert_array_equal(np.concatenate([c.lengths for c in chunks]), whole.lengths)
    np.testing.assert_array_equal(np.concatenate([c.features for c in chunks]), whole.features)
    np.testing.assert_array_equal(np.concatenate([c.times for c in chunks]), whole.times)
    np.testing.assert_array_equal(np.concatenate([c.levels for c in chunks]), whole.levels)


def test_iter_clip_chunks_needs_contiguous_clips_and_no_quantiles(tmp_path):
    perfex_frame([1, 1, 2, 1]).to_csv(tmp_path / "mixed.csv", index=False)
    assert load_clips([tmp_path / "mixed.csv"]).lengths.tolist() == [3, 1]
    with pytest.raises(PerfexError, match=r"clip ID 1 reappears at row 4 \(file line 5\) .*sort the file by ID"):
        list(iter_clip_chunks([tmp_path / "mixed.csv"], chunk_rows=2))
    # the same when the clip comes back in a later record batch
    ids = [1] * 3 + list(np.repeat(np.arange(2, 300), 3)) + [1]
    perfex_frame(ids).to_csv(tmp_path / "late.csv", index=False)
    assert (tmp_path / "late.csv").stat().st_size > 100_000
    with pytest.raises(PerfexError, match=r"clip ID 1 reappears at row 898 \(file line 899\)"):
        list(iter_clip_chunks([tmp_path / "late.csv"], chunk_rows=100))
    # a file that fits one chunk is read in one (multithreaded) go, with the streaming rules
    assert fits_one_chunk(tmp_path / "late.csv", 10_000) and not fits_one_chunk(tmp_path / "late.csv", 100)
    with pytest.raises(PerfexError, match=r"clip ID 1 reappears at row 898 \(file line 899\)"):
        list(iter_clip_chunks([tmp_path / "late.csv"], chunk_rows=10_000))
    with pytest.raises(PerfexError, match="quantile needs every clip at once"):
        next(iter_clip_chunks([tmp_path / "mixed.csv"], label_binning="quantile"))


def test_cache_round_trip_skips_parsing(tmp_path, monkeypatch):
    table = perfex_frame([1, 1, 2, 3, 3], {1: [0.5] * 5, 2: [0.25] * 5, 3: [1.0] * 5})
    table["augmentation"] = "none"
    table.to_csv(tmp_path / "a.csv", index=False)
    write_openface(tmp_path / "b.csv", 5, success=[1, 0, 1, 1, 1])
    inputs, cache = [tmp_path / "a.csv", tmp_path / "b.csv"], tmp_path / "cache"
    first = load_clips(inputs, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed although the cache holds the file")

    monkeypatch.setattr(perfex.data.readers.parsers.perfex_long, "read_perfex", no_parsing)
    monkeypatch.setattr(perfex.data.readers.parsers.openface, "read_openface", no_parsing)
    second = load_clips(inputs, cache_dir=cache)
    for name in ("ids", "files", "offsets", "features", "times", "scores", "levels", "source_ids", "augmentation",
                 "dropped_frames"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name), err_msg=name)
    assert second.ids.dtype == object and second.features.dtype == np.float32
    assert second.feature_names == first.feature_names and second.origin == first.origin
    with pytest.raises(AssertionError, match="parsed although"):
        load_clips(inputs, cache_dir=cache, min_confidence=0.5)  # other options: another entry
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(tmp_path / "a.csv", moved / "a.csv")  # same content elsewhere: same entry
    assert load_clips([moved / "a.csv"], cache_dir=cache).origin == [str(moved / "a.csv")]
    monkeypatch.undo()
    perfex_frame([1, 1, 2]).to_csv(tmp_path / "a.csv", index=False)  # new content: parsed again
    assert load_clips([tmp_path / "a.csv"], cache_dir=cache).lengths.tolist() == [2, 1]
    for entry in cache.glob("*.npz"):
        entry.write_bytes(b"damaged")
    assert load_clips([tmp_path / "a.csv"], cache_dir=cache).lengths.tolist() == [2, 1]  # re-parsed and rewritten
    assert load_clips([tmp_path / "a.csv"], cache_dir=cache).lengths.tolist() == [2, 1]


def test_cached_load_is_at_least_ten_times_faster_than_parsing(tmp_path):
    n_clips, n_frames = 200, 300
    ids = np.repeat(np.arange(n_clips), n_frames)
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.random((len(ids), 40)).round(3), columns=[*AUS, *AU_PRESENCE_COLUMNS, *EMOTION_COLUMNS])
    table.insert(0, "File", np.repeat([f"v{i:010d}.000.mp4" for i in range(n_clips)], n_frames))
    table.insert(0, "ID", ids)
    table[list(TRAITS)] = 0.5
    path, cache = tmp_path / "frames.csv", tmp_path / "cache"
    table.to_csv(path, index=False)

    def best_of_three(**kwargs) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            clips = load_clips([path], **kwargs)
            times.append(time.perf_counter() - start)
        assert len(clips) == n_clips
        return min(times)

    parse = best_of_three()
    load_clips([path], cache_dir=cache)
    cached = best_of_three(cache_dir=cache)
    assert parse / cached >= 10, (parse, cached)
    with np.load(next(cache.glob("*.npz"))) as stored:  # an ordinary .npz
        assert stored["features"].shape == (len(ids), 17)


def test_real_openface_files():
    pyfeat = load_clips([needs_real("openface2.0_pyfeat_test.csv")])
    assert pyfeat.ids.tolist() == ["openface2.0_pyfeat_test"] and pyfeat.lengths.tolist() == [100]
    np.testing.assert_allclose(pyfeat.times[:3], [0.0, 0.001, 0.002], atol=1e-7)
    sample = load_clips([needs_real("openface2.0.6_sample_default.csv.gz")])
    assert sample.ids.tolist() == ["openface2.0.6_sample_default"] and sample.lengths.tolist() == [288]
    np.testing.assert_allclose(np.diff(sample.times).mean(), 1 / 15, rtol=1e-3)
    for clips in (pyfeat, sample):
        assert clips.features.shape[1] == 17 and np.isfinite(clips.features).all()
        assert 0 <= clips.features.min() and clips.features.max() <= 5 and clips.features.std() > 0.05
    # The FACSvatar file ends in a truncated line (196 of 714 fields): an error unless frames may be dropped.
    jt = needs_real("openface2.2_facsvatar_jt.csv")
    with pytest.raises(PerfexError, match=r"line 476 has 196 fields but the header has 714 .*--nan drop-frames"):
        load_clips([jt])
    dropped = load_clips([jt], nan_policy="drop-frames")
    assert dropped.lengths.tolist() == [474] and dropped.dropped_frames.tolist() == [1]
    np.testing.assert_allclose(dropped.times[1], 0.04, atol=1e-6)
    with_gaze = load_clips([jt], nan_policy="drop-frames", features=("AU12_r", "gaze_angle_x", "pose_Rx"))
    assert with_gaze.features.shape == (474, 3) and np.isfinite(with_gaze.features).all()


def test_real_openface_with_real_labels(tmp_path):
    source = needs_real("openface2.0_pyfeat_test.csv")
    pkl = needs_real("fi_annotation_validation.pkl")
    shutil.copy(source, tmp_path / "modNfUPt3F4.002.csv")
    shutil.copy(source, tmp_path / "h6LOjpCRXtY.005.csv")
    with pytest.raises(PerfexError, match="--label-binning round\\|floor\\|quantile"):
        load_clips([tmp_path], labels=pkl)
    clips = load_clips([tmp_path], labels=pkl, label_binning="round", require_labels=True)
    assert clips.files.tolist() == ["h6LOjpCRXtY.005.mp4", "modNfUPt3F4.002.mp4"]
    np.testing.assert_allclose(clips.scores[1, 0], 0.6448598130841123)
    assert clips.levels[1, 0] == 3 and clips.levels[0, 0] == 2
    from_csv = load_clips([tmp_path], labels=needs_real("fi_v1_validation_gt.csv"), label_binning="round")
    np.testing.assert_array_equal(from_csv.scores, clips.scores)
