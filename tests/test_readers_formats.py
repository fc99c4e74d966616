"""The input-format registry: detection order, what each format records, messages generated from it, a new format."""

import subprocess
import sys

import numpy as np
import pytest

from helpers import REPO
from perfex.core.errors import PerfexError
from perfex.data.readers import load_clips
from perfex.data.readers.formats import FORMATS, INTENSITY, Extractor, InputFormat, format_of, is_long, register_format, titles

pytestmark = pytest.mark.unit


def test_headers_are_recognised_in_registration_order():
    assert format_of(["frame", " face_id", " success", " AU01_r"]) == "openface"
    assert format_of(["frame", "FaceScore", "AU01"]) == "py-feat"
    assert format_of(["frame_idx", "au_1_intensity"]) == "libreface"
    assert format_of(["ID", "File", "AU01_r"]) == "perfex"
    assert format_of(["File", "extroversion"]) is None
    assert is_long("perfex") and not is_long("openface") and not is_long(None)


def test_each_format_records_its_extractor_and_scale():
    recorded = {name: (f.extractor.name, f.extractor.scale, len(f.extractor.au_names)) for name, f in FORMATS.items()}
    assert recorded == {"openface": ("openface2", INTENSITY, 17), "py-feat": ("py-feat", "probability-0-1", 16),
                        "libreface": ("libreface", INTENSITY, 12), "perfex": ("openface2", INTENSITY, 17)}


def test_messages_list_the_registered_formats():
    assert titles() == "PerFeX long CSV, OpenFace, py-feat or LibreFace"
    result = subprocess.run([sys.executable, "1dcnn_train.py", "--help"], cwd=REPO, capture_output=True, text=True)
    shown = " ".join(result.stdout.split())
    assert "labels for OpenFace, py-feat or LibreFace inputs" in shown and "py-feat: faces with FaceScore" in shown


def test_a_registered_format_is_detected_and_read(tmp_path, monkeypatch):
    """What docs/formats.md asks of a new format: a header test, a reader, what it records; nothing else to edit."""
    toy = InputFormat("toy", "Toy", Extractor("toy1", "Toy 1", INTENSITY, {"AU01_r": "smile"}),
                      lambda names: "toy_frame" in names, "perfex.data.readers.parsers.libreface:read_libreface")
    monkeypatch.setitem(FORMATS, "toy", toy)
    with pytest.raises(PerfexError, match="registered twice"):
        register_format(toy)
    path = tmp_path / "clip.csv"
    path.write_text("toy_frame,frame_idx,smile\n" + "".join(f"0,{i},{i % 5}\n" for i in range(50)))
    clips = load_clips([path], features="AU01_r")
    assert clips.provenance.extractor == "toy1" and clips.features.shape == (50, 1)
    np.testing.assert_array_equal(clips.features[:5, 0], [0, 1, 2, 3, 4])
    assert titles().endswith("LibreFace or Toy")
