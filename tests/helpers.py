"""Helpers shared by the test modules: ``from helpers import REPO, REAL, run_script`` (tests/ is on the pythonpath,
pyproject.toml). Fixtures and hooks stay in conftest.py."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Real sample files (OpenFace and py-feat outputs, First Impressions labels) are kept outside the project, in a
# folder beside its checkout; the tests that read them skip when it is absent. This is the one place that names it.
REAL = REPO.parent / "shared" / "real"


def run_script(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a top-level script (or ``-m module``) as a user would, from the repo root."""
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def pip_install_project(tmp_path: Path) -> Path:
    """``pip install --no-deps`` of a copy of the project into ``tmp_path/site``; returns that folder."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for package in ("perfex", "models"):
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(target), str(source)], check=True, capture_output=True, text=True, timeout=300)
    return target
