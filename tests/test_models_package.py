"""The project installs as a package (perfex and models) and both import from the installed copy."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]


def test_pip_installs_perfex_and_models(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for package in ("perfex", "models"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(source)], check=True, capture_output=True, text=True, timeout=300)
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == ["bin", "models", "perfex"]
    code = ("import models, perfex, perfex.cli.scripts; print(models.__file__); print(perfex.__file__); "
            "print(models.create_model('cnn').n_outputs)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                            capture_output=True, text=True, timeout=300, check=True)
    models_file, perfex_file, outputs = result.stdout.split()
    assert Path(models_file).is_relative_to(target) and Path(perfex_file).is_relative_to(target) and outputs == "25"
