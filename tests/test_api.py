"""The Python API: perfex.load_model(...).predict(...) gives deploy's rows, create_model, load_clips, light import."""

from __future__ import annotations

import doctest
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, run_script

import perfex
import perfex.api
from perfex.infer.clip_rows import CLIP_COLUMNS
from perfex.core.errors import PerfexError

pytestmark = pytest.mark.e2e

DEPLOY_SCRIPTS = {"cnn": "1dcnn_deploy.py", "attn": "attn_deploy.py"}
SAMPLE = REPO / "data" / "deploy.csv.gz"


def assert_same_rows(table: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal up to the CSV's 6 significant digits; an empty text field in the CSV is an empty string."""
    assert list(table.columns) == list(expected.columns) == CLIP_COLUMNS
    for column in CLIP_COLUMNS:
        got, want = table[column], expected[column]
        if want.dtype.kind in "if" and got.dtype.kind in "if":
            np.testing.assert_allclose(got.to_numpy(np.float64), want.to_numpy(np.float64), rtol=1e-5, err_msg=column)
        else:
            assert got.fillna("").astype(str).tolist() == want.fillna("").astype(str).tolist(), column


def test_the_docstring_examples_run():
    result = doctest.testmod(perfex.api, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


@pytest.mark.parametrize("family", ["cnn", "attn"])
def test_predict_gives_the_deploy_scripts_rows(family, tmp_path):
    out = tmp_path / "deploy.csv"
    script = run_script(DEPLOY_SCRIPTS[family], "--weights", f"weights/{family}.safetensors", "--data", str(SAMPLE),
                        "--out", str(out), "--no-progress")
    assert script.returncode == 0, script.stderr[-2000:]
    table = perfex.load_model(REPO / "weights" / f"{family}.safetensors").predict(SAMPLE)
    assert_same_rows(table, pd.read_csv(out, dtype={"ID": str, "File": str}))


def test_predict_takes_paths_lists_and_frame_tables_alike():
    model = perfex.load_model(REPO / "weights" / "cnn.safetensors", runtime="torch")
    assert model.family == "cnn" and model.engine.runtime == "torch"
    from_file = model.predict(str(SAMPLE))
    pd.testing.assert_frame_equal(model.predict(pd.read_csv(SAMPLE, dtype={"ID": str})), from_file)
    openface = REPO / "data" / "openface_deploy"
    from_folder = model.predict([openface / "cyIVkcs6vIe.000.csv.gz", openface / "cyIVkcs6vIe.001.csv.gz"])
    assert from_folder["ID"].tolist() == ["cyIVkcs6vIe.000", "cyIVkcs6vIe.001"]
    from_frames = model.predict(pd.read_csv(openface / "cyIVkcs6vIe.000.csv.gz"))
    assert from_frames["ID"].tolist() == ["dataframe"]
    probabilities = [c for c in CLIP_COLUMNS if c.startswith("p_")]
    # one clip alone or batched beside a longer one: other tensor shapes, so the convolutions may round differently
    np.testing.assert_allclose(from_frames[probabilities].to_numpy(), from_folder[probabilities].to_numpy()[:1], atol=1e-6)


def test_predict_without_a_readable_clip_and_unknown_options_fail_in_one_line(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    model = perfex.load_model(REPO / "weights" / "cnn.safetensors")
    with pytest.raises(PerfexError, match="no input clip could be read: .*empty.csv is empty"):
        model.predict(tmp_path / "empty.csv")
    with pytest.raises(PerfexError, match="unknown option"):
        perfex.load_model(REPO / "weights" / "cnn.safetensors", window=3)


def test_create_model_and_load_clips_are_the_registry_and_the_readers():
    from models import create_model
    from perfex.data.readers import load_clips

    assert type(perfex.create_model("attn")) is type(create_model("attn"))
    clips = perfex.load_clips(SAMPLE)
    np.testing.assert_array_equal(clips.features, load_clips(SAMPLE).features)


def test_import_perfex_stays_light():
    result = run_script("-c", "import perfex, sys; print('torch' in sys.modules, perfex.__version__)")
    assert result.returncode == 0 and result.stdout.split()[0] == "False", result.stderr
    assert sys.modules["perfex"].__version__ == result.stdout.split()[1]
