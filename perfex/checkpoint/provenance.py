"""Study identity and lineage: file hashes, the study manifest, and the sidecar that ties retrain data to a study."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..core.errors import PerfexError
from ..core.tables import atomic_output

MANIFEST = "study.json"
SIDECAR_SUFFIX = ".study.json"


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_inputs(paths: list[Path]) -> list[dict]:
    """[{path, sha256}] of input files, so a study names exactly what it was made from."""
    return [{"path": str(path), "sha256": sha256(path)} for path in paths]


def make_study_id(inputs: list[dict], settings: dict) -> str:
    """'study-' + 12 hex digits derived from the inputs' hashes and the selection settings (same inputs, same ID)."""
    text = json.dumps({"inputs": [i["sha256"] for i in inputs], "settings": settings}, sort_keys=True)
    return "study-" + hashlib.sha256(text.encode()).hexdigest()[:12]


def write_json(data: dict, path: Path) -> None:
    """Write JSON atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def read_manifest(study_dir: str | Path) -> dict:
    """The study.json of a study folder written by ``user_study.py select``."""
    path = Path(study_dir) / MANIFEST
    if not path.is_file():
        raise PerfexError(f"{path} does not exist; pass the folder written by 'user_study.py select --out'")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PerfexError(f"{path} is not valid JSON ({err}); restore it from the select run") from None
    if "study_id" not in manifest:
        raise PerfexError(f"{path} has no study_id; it was not written by 'user_study.py select'")
    return manifest


def sidecar_path(data_path: str | Path) -> Path:
    """'out/retrain.csv.gz' -> 'out/retrain.study.json'."""
    path = Path(data_path)
    return path.with_name(path.name.removesuffix(".gz").removesuffix(".csv") + SIDECAR_SUFFIX)


def study_for(data_path: str | Path) -> dict | None:
    """The study a retrain CSV came from (its sidecar, with 'verified': whether the CSV's hash still matches), else None."""
    sidecar = sidecar_path(data_path)
    if not sidecar.is_file() or not Path(data_path).is_file():
        return None
    try:
        record = json.loads(sidecar.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    record["verified"] = record.get("retrain_data", {}).get("sha256") == sha256(data_path)
    return record
