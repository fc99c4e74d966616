"""Deploy's per-frame CSV written from the same chunks that are predicted: columns, values, bounded chunks."""

import numpy as np
import pandas as pd
import pytest

from perfex.infer.per_frame import PerFrameWriter, per_frame_columns
from perfex.data.readers import ReadOptions, find_inputs, iter_clip_chunks
from perfex.core.schema import AU_INTENSITY_COLUMNS, TRAITS

pytestmark = pytest.mark.unit


def write_inputs(folder):
    ids = np.repeat([3, 5, 8, 9], [4, 2, 5, 3])
    long = pd.DataFrame({"ID": ids, "File": [f"v{i}.mp4" for i in ids], "Word": "hi",
                         **{c: np.round(ids * 0.1 + j * 0.01, 4) for j, c in enumerate(AU_INTENSITY_COLUMNS)}})
    long["openness"] = np.nan
    long.to_csv(folder / "long.csv", index=False)
    header = ["frame", "face_id", "timestamp", "confidence", "success", "gaze_angle_x", *AU_INTENSITY_COLUMNS]
    lines = [", ".join(header)]
    for frame, face in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 1)]:
        lines.append(", ".join([str(frame), str(face), f"{frame / 30:.3f}", "0.9", "1", "0.123456789", *["1.25"] * 17]))
    (folder / "zz.csv").write_text("\n".join(lines) + "\n")
    return len(ids) + 5


def test_per_frame_rows_carry_the_traits_of_their_clip(tmp_path):
    n_rows = write_inputs(tmp_path)
    scan = find_inputs([tmp_path])
    columns = per_frame_columns(scan.files)
    assert columns == ["ID", "File", "Word", *AU_INTENSITY_COLUMNS, "openness", *TRAITS[:4],
                       "frame", "face_id", "timestamp", "confidence", "success", "gaze_angle_x"]
    out = tmp_path / "out" / "frames.csv"
    chunk_sizes = []
    with PerFrameWriter(out, columns) as writer:
        for chunk in iter_clip_chunks(scan, ReadOptions(notify=lambda text: None), chunk_rows=4, keep_rows=True):
            clip_rows = sum(block.table.num_rows for block in chunk.rows)
            chunk_sizes.append(clip_rows)
            assert clip_rows == chunk.clips.lengths.sum() + chunk.clips.dropped_frames.sum()
            traits = np.array([[0.25 * (k % 5)] * 5 for k in range(len(chunk.clips))])
            traits[chunk.clips.ids == 8] = np.nan  # a clip that was not predicted
            writer.write(chunk.rows, chunk.clips.ids, traits)
        assert not out.exists()  # appears only when complete
    assert len(chunk_sizes) == 2 and sum(chunk_sizes) == n_rows == writer.rows_written
    frames = pd.read_csv(out, dtype={"ID": str})
    assert frames.columns.tolist() == columns and len(frames) == n_rows
    assert frames["ID"].tolist()[:4] == ["3"] * 4 and frames["ID"].tolist()[-5:] == ["zz#face0", "zz#face1"] * 2 + ["zz#face1"]
    assert frames.loc[frames["ID"] == "8", "openness"].isna().all()
    assert frames.loc[frames["ID"] == "5", "extroversion"].tolist() == [0.25, 0.25]
    assert frames["Word"].tolist()[:2] == ["hi", "hi"] and frames["gaze_angle_x"].iloc[-1] == pytest.approx(0.123456789)
    np.testing.assert_allclose(frames.loc[:3, "AU02_r"], 0.31)


def test_per_frame_gzip_output(tmp_path):
    write_inputs(tmp_path)
    scan = find_inputs([tmp_path / "long.csv"])
    with PerFrameWriter(tmp_path / "f.csv.gz", per_frame_columns(scan.files)) as writer:
        for chunk in iter_clip_chunks(scan.files, keep_rows=True):
            writer.write(chunk.rows, chunk.clips.ids, np.full((len(chunk.clips), 5), 0.5))
    assert (pd.read_csv(tmp_path / "f.csv.gz")["neuroticism"] == 0.5).all()
