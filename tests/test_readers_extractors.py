"""Extractor-aware readers: py-feat and LibreFace layouts, several faces, provenance, the mismatch check, features."""

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perfex.core.errors import PerfexError
from perfex.data.readers import (INTENSITY, PROBABILITY, ReadOptions, center_on_clip_median, check_compatible, clip_medians,
                            detect_format, iter_clip_chunks, load_clips, read, resolve_features)
from perfex.core.schema import AU_INTENSITY_COLUMNS, TRAITS

from helpers import REAL

pytestmark = pytest.mark.unit

LIBREFACE_INTENSITIES = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
PYFEAT_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 17, 20, 23, 24, 25, 26, 28, 43)


def needs_real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real sample {name} not available")
    return path


def write_libreface(path: Path, frames: list[int]) -> None:
    """LibreFace's documented layout; intensity of AU n at frame f is (n + f) / 100."""
    table = pd.DataFrame({"frame_idx": frames, "frame_time_in_ms": [f / 30 for f in frames],
                          "pitch": 1.0, "yaw": 2.0, "roll": 3.0})
    for n in LIBREFACE_INTENSITIES:
        table[f"au_{n}_intensity"] = [(n + f) / 100 for f in frames]
    for n in (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24):
        table[f"au_{n}"] = 0
    table["facial_expression"] = "Neutral"
    table[["gaze_yaw", "gaze_pitch"]] = 0.1
    table.to_csv(path, index=False)


def write_pyfeat(path: Path, frames: list[int], identity: list[str] | None = None, scores=None) -> None:
    """A py-feat Fex table; probability of AU n on row r is (n + r) / 1000."""
    rows = len(frames)
    table = pd.DataFrame({"FaceRectX": 1.0, "FaceScore": scores if scores is not None else [0.99] * rows,
                          "Pitch": 0.5, "Roll": 0.1, "Yaw": 0.2}, index=range(rows))
    for n in PYFEAT_AUS:
        table[f"AU{n:02d}"] = [(n + r) / 1000 for r in range(rows)]
    table["input"], table["frame"] = "v.mp4", frames
    if identity is not None:
        table["Identity"] = identity
    table.to_csv(path, index=False)


def write_multiface_openface(path: Path, faces_per_frame: list[list[int]]) -> None:
    """FaceLandmarkVidMulti-style rows: one per tracked face per frame; AU01 holds frame + face_id / 10."""
    columns = ["frame", "face_id", "timestamp", "confidence", "success", *AU_INTENSITY_COLUMNS]
    lines = [", ".join(columns)]
    for frame, faces in enumerate(faces_per_frame):
        for face in faces:
            aus = [f"{frame + face / 10:.2f}"] * len(AU_INTENSITY_COLUMNS)
            lines.append(", ".join([str(frame + 1), str(face), f"{frame / 30:.3f}", "0.95", "1", *aus]))
    path.write_text("\n".join(lines) + "\n")


def test_libreface_layout_maps_onto_canonical_aus(tmp_path):
    path = tmp_path / "talk.csv"
    write_libreface(path, [0, 1, 2, 5])
    assert detect_format(path) == "libreface"
    clips = read(path)
    wanted = tuple(f"AU{n:02d}_r" for n in LIBREFACE_INTENSITIES)
    assert clips.feature_names == wanted and clips.ids.tolist() == ["talk"]
    assert clips.provenance.extractor == "libreface" and clips.provenance.scale == INTENSITY
    assert clips.provenance.missing_aus == ("AU07_r", "AU10_r", "AU14_r", "AU23_r", "AU45_r")
    np.testing.assert_allclose(clips.features[:, 0], [0.01, 0.02, 0.03, 0.06], rtol=1e-6)
    np.testing.assert_allclose(clips.times, [0, 1 / 30, 2 / 30, 5 / 30], rtol=1e-6)
    with pytest.raises(PerfexError, match=r"talk\.csv lacks the column\(s\) AU07_r, AU10_r, AU14_r, AU23_r, AU45_r"):
        read(path, ReadOptions(features=AU_INTENSITY_COLUMNS))  # a checkpoint's exact list: every column required


def test_pyfeat_probabilities_faces_by_order_and_by_identity(tmp_path):
    path = tmp_path / "two.csv"
    write_pyfeat(path, [0, 0, 2, 2, 4], scores=[0.99, 0.9, 0.99, float("nan"), 0.99])
    clips = read(path, ReadOptions(min_confidence=0.5))
    assert clips.ids.tolist() == ["two#face0", "two#face1"] and clips.lengths.tolist() == [3, 1]
    assert clips.dropped_frames.tolist() == [0, 1]
    assert clips.provenance.scale == PROBABILITY and clips.provenance.missing_aus == ("AU45_r",)
    assert len(clips.feature_names) == 16 and "AU45_r" not in clips.feature_names
    np.testing.assert_allclose(clips.clip(0)[:, 0], [0.001, 0.003, 0.005], rtol=1e-6)
    np.testing.assert_allclose(clips.clip_times(0), [0, 2 / 30, 4 / 30], rtol=1e-6)
    write_pyfeat(path, [0, 0, 2, 2], identity=["Person_1", "Person_2", "Person_2", "Person_1"])
    named = read(path)
    assert named.ids.tolist() == ["two#Person_1", "two#Person_2"]
    np.testing.assert_allclose(named.clip(0)[:, 0], [0.001, 0.004], rtol=1e-6)


def test_real_pyfeat_samples_read_as_probabilities():
    news = read(needs_real("pyfeat/news_001.csv.gz"))
    assert news.ids.tolist() == ["news_001"] and news.lengths.tolist() == [20]
    assert news.provenance.extractor == "py-feat" and news.provenance.scale == PROBABILITY
    assert news.features.shape == (20, 16) and 0 <= news.features.min() and news.features.max() <= 1
    np.testing.assert_allclose(news.times[:3], [0, 2 / 30, 4 / 30], rtol=1e-6)  # every 2nd frame was processed
    old = read(needs_real("pyfeat/v1_test_002.csv.gz"))
    assert old.lengths.tolist() == [28] and np.isfinite(old.features).all()


def test_training_on_pyfeat_uses_the_aus_it_provides(tmp_path):
    folder = tmp_path / "pyfeat"
    folder.mkdir()
    for name in ("aaaaaaaaaaa.000", "bbbbbbbbbbb.001"):
        write_pyfeat(folder / f"{name}.csv", [0, 1, 2])
    pd.DataFrame({"File": ["aaaaaaaaaaa.000.mp4", "bbbbbbbbbbb.001.mp4"], **{t: [0.25, 0.75] for t in TRAITS}}).to_csv(
        tmp_path / "labels.csv", index=False)
    clips = load_clips([folder], labels=tmp_path / "labels.csv", require_labels=True)
    assert clips.n_features == 16 and clips.levels[:, 0].tolist() == [1, 3]


def test_extractor_mismatch_is_refused_unless_allowed(tmp_path):
    write_pyfeat(tmp_path / "p.csv", [0, 1])
    trained = {"extractor": "openface2", "scale": INTENSITY}
    with pytest.raises(PerfexError) as err:
        read(tmp_path / "p.csv", ReadOptions(expect=trained))
    message = str(err.value)
    assert "\n" not in message and "trained on OpenFace 2 AU intensities (0-5)" in message
    assert "p.csv holds py-feat AU probabilities (0-1)" in message and "--allow-extractor-mismatch" in message
    assert len(read(tmp_path / "p.csv", ReadOptions(expect=trained, allow_extractor_mismatch=True))) == 1
    read(tmp_path / "p.csv", ReadOptions(cache_dir=tmp_path / "cache"))
    with pytest.raises(PerfexError, match="trained on OpenFace 2"):  # refused from the cache too
        read(tmp_path / "p.csv", ReadOptions(expect=trained, cache_dir=tmp_path / "cache"))
    clips = read(tmp_path / "p.csv")
    check_compatible(clips.provenance.as_dict(), clips)
    check_compatible({}, read(needs_or_write_openface(tmp_path)))  # legacy weights: OpenFace 2 intensities
    with pytest.raises(PerfexError, match="trained on OpenFace 2"):
        check_compatible({}, clips)
    with pytest.raises(PerfexError, match=r"read one extractor's outputs at a time"):
        load_clips([tmp_path / "p.csv", needs_or_write_openface(tmp_path)])


def needs_or_write_openface(tmp_path: Path) -> Path:
    path = tmp_path / "of.csv"
    write_multiface_openface(path, [[0], [0]])
    return path


def test_multiface_openface_all_faces_accounted(tmp_path):
    path = tmp_path / "group.csv"
    write_multiface_openface(path, [[0, 1], [0, 1, 3], [1], [0, 3]])
    clips = read(path, ReadOptions(notify=lambda text: None))
    assert clips.ids.tolist() == ["group#face0", "group#face1", "group#face3"]
    assert clips.lengths.tolist() == [3, 3, 2] and clips.lengths.sum() == 8
    np.testing.assert_allclose(clips.clip(2)[:, 0], [1.3, 3.3], rtol=1e-6)
    np.testing.assert_allclose(clips.clip_times(2), [0, 2 / 30], atol=1e-3)


def test_resolve_features_sets_and_columns():
    assert resolve_features("au") == AU_INTENSITY_COLUMNS
    both = resolve_features("au+gaze+pose")
    assert len(both) == 22 and both[17:] == ("gaze_angle_x", "gaze_angle_y", "pose_Rx", "pose_Ry", "pose_Rz")
    assert resolve_features("au+gaze") == resolve_features("au,gaze")
    assert resolve_features("AU12_r,pose_Tz") == ("AU12_r", "pose_Tz")
    with pytest.raises(PerfexError, match="names no columns"):
        resolve_features(" + ")


def test_au_gaze_pose_on_the_real_openface_206_sample():
    clips = read(needs_real("openface2.0.6_sample_default.csv.gz"), ReadOptions(features="au+gaze+pose"))
    assert clips.features.shape == (288, 22) and np.isfinite(clips.features).all()
    assert clips.feature_names[-5:] == ("gaze_angle_x", "gaze_angle_y", "pose_Rx", "pose_Ry", "pose_Rz")
    assert np.abs(clips.features[:, -3:]).max() < np.pi and clips.features[:, 17].std() > 0


def test_features_missing_from_a_file_are_the_usual_error(tmp_path):
    path = tmp_path / "of.csv"
    write_multiface_openface(path, [[0]])
    with pytest.raises(PerfexError, match=r"of\.csv lacks the column\(s\) gaze_angle_x, gaze_angle_y, pose_Rx, "):
        read(path, ReadOptions(features="au+gaze+pose"))


def test_clip_median_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    ids = np.repeat([4, 8, 9], [5, 6, 7])
    table = pd.DataFrame(rng.random((len(ids), 17)).astype(np.float32) * 5, columns=AU_INTENSITY_COLUMNS)
    table.insert(0, "File", [f"v{i}.mp4" for i in ids])
    table.insert(0, "ID", ids)
    table.to_csv(tmp_path / "a.csv", index=False)
    raw = read(tmp_path / "a.csv")
    centred = read(tmp_path / "a.csv", ReadOptions(normalize="clip-median"))
    np.testing.assert_allclose(clip_medians(centred), 0, atol=1e-6)
    restored = centred.features + clip_medians(raw)[np.repeat(np.arange(3), raw.lengths)]
    np.testing.assert_allclose(restored, raw.features, atol=1e-6)
    np.testing.assert_allclose(center_on_clip_median(raw).features, centred.features, atol=1e-7)
    streamed = [c.clips for c in iter_clip_chunks([tmp_path / "a.csv"], ReadOptions(normalize="clip-median"), chunk_rows=4)]
    np.testing.assert_allclose(np.concatenate([c.features for c in streamed]), centred.features, atol=1e-7)
    with pytest.raises(PerfexError, match="--normalize 'zscore' is not one of global, clip-median"):
        ReadOptions(normalize="zscore")


def test_gzip_libreface_and_pyfeat_formats_detected(tmp_path):
    write_libreface(tmp_path / "l.csv", [0])
    (tmp_path / "l.csv.gz").write_bytes(gzip.compress((tmp_path / "l.csv").read_bytes()))
    assert detect_format(tmp_path / "l.csv.gz") == "libreface"
    write_pyfeat(tmp_path / "p.csv", [0])
    assert detect_format(tmp_path / "p.csv") == "py-feat"


def test_cache_keeps_provenance_and_face_clips(tmp_path):
    write_pyfeat(tmp_path / "p.csv", [0, 0, 1, 1])
    options = ReadOptions(cache_dir=tmp_path / "cache")
    first, second = read(tmp_path / "p.csv", options), read(tmp_path / "p.csv", options)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert second.provenance == first.provenance and second.provenance.scale == PROBABILITY
    assert second.ids.tolist() == ["p#face0", "p#face1"] and second.feature_names == first.feature_names
    np.testing.assert_array_equal(second.features, first.features)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "q.csv").write_bytes((tmp_path / "p.csv").read_bytes())  # same bytes, another clip name
    assert read(tmp_path / "sub" / "q.csv", options).ids.tolist() == ["q#face0", "q#face1"]


def test_load_labelled_takes_a_runs_flags_and_the_checkpoints_extractor(tmp_path):
    from perfex.checkpoint.metadata import CheckpointMeta
    from perfex.data.options import DataOptions
    from perfex.data.prepare import load_labelled

    write_pyfeat(tmp_path / "aaaaaaaaaaa.000.csv", [0, 1, 2])
    pd.DataFrame({"File": ["aaaaaaaaaaa.000.mp4"], **{t: [0.5] for t in TRAITS}}).to_csv(tmp_path / "l.csv", index=False)
    flags = DataOptions(labels=str(tmp_path / "l.csv"), min_confidence=0.5, normalize="clip-median")
    clips = load_labelled([tmp_path / "aaaaaaaaaaa.000.csv"], flags)
    assert clips.n_features == 16 and np.allclose(clip_medians(clips), 0)
    openface_weights = CheckpointMeta(model="cnn", feature_names=list(clips.feature_names), provenance={"extractor": "openface2"})
    with pytest.raises(PerfexError, match="trained on OpenFace 2"):
        load_labelled([tmp_path / "aaaaaaaaaaa.000.csv"], flags, openface_weights)
    flags.allow_extractor_mismatch = True
    assert len(load_labelled([tmp_path / "aaaaaaaaaaa.000.csv"], flags, openface_weights)) == 1
