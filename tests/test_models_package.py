"""The project installs as a package (perfex and models) and both import from the installed copy."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import pip_install_project

pytestmark = pytest.mark.e2e



def test_pip_installs_perfex_and_models(tmp_path):
    target = pip_install_project(tmp_path)
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".dist-info")) == ["bin", "models", "perfex"]
    code = ("import models, perfex, perfex.cli.scripts; print(models.__file__); print(perfex.__file__); "
            "print(models.create_model('cnn').n_outputs)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(target)},
                            capture_output=True, text=True, timeout=300, check=True)
    models_file, perfex_file, outputs = result.stdout.split()
    assert Path(models_file).is_relative_to(target) and Path(perfex_file).is_relative_to(target) and outputs == "25"
