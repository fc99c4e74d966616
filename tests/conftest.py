"""Fixtures (small generated PerFeX data sets, seconds to train on) and the session's environment. Helpers that test
modules import are in helpers.py."""

import os
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config):
    # The suite runs as two pytest-xdist workers on a 2-core machine (README, Tests): one thread each, also in the
    # scripts the tests start, so the workers do not oversubscribe the cores. A value set by the caller wins.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # ONNX exports of checkpoints go to a throwaway cache, not the user's ~/.cache/perfex.
    os.environ.setdefault("PERFEX_CACHE", tempfile.mkdtemp(prefix="perfex-test-cache-"))


@pytest.fixture(scope="session")
def learnable_csv(tmp_path_factory) -> Path:
    """A labelled PerFeX CSV with a strong planted signal (wide trait spread), short clips for speed."""
    from perfex.data.synth import generate_perfex, write_table

    path = tmp_path_factory.mktemp("data") / "train.csv.gz"
    write_table(generate_perfex(240, seed=11, spread=3.0, min_frames=90, max_frames=150), path)
    return path


@pytest.fixture(scope="session")
def deploy_csv(tmp_path_factory) -> Path:
    """Unlabelled PerFeX input with normal, too-short and longer-than-window clips."""
    import numpy as np
    import pandas as pd

    from perfex.data.synth import generate_perfex, write_table

    parts = [generate_perfex(6, seed=5, labeled=False, min_frames=100, max_frames=200),
             generate_perfex(2, seed=6, labeled=False, min_frames=10, max_frames=30, id_start=100),
             generate_perfex(2, seed=7, labeled=False, min_frames=900, max_frames=1000, id_start=200)]
    frame = pd.concat(parts, ignore_index=True)
    assert frame["ID"].nunique() == 10 and np.isnan(frame["openness"]).all()
    path = tmp_path_factory.mktemp("deploy") / "deploy.csv"
    write_table(frame, path)
    return path
