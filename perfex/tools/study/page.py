"""The rating page: one self-contained HTML file (no server, no network) that writes a rater's sheet as CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...core.schema import FILE_COLUMN, ID_COLUMN
from ...core.tables import atomic_output
from .scale import describe, scale_labels, scale_values, study_targets
from .sheets import sheet_columns

TEMPLATE = Path(__file__).with_name("rate_template.html")
PLACEHOLDER = "/*STUDY_DATA*/"
PLOTTED_AUS = ("AU01_r", "AU04_r", "AU06_r", "AU12_r", "AU15_r", "AU45_r")


def page_data(manifest: dict, orders: dict[str, list[str]], chosen: pd.DataFrame, details: dict[str, dict],
              videos: dict[str, str]) -> dict:
    """Everything the page shows: study ID, scale, traits (targets) with descriptions (and, unless the Big Five, each
    one's answers), each rater's order, each clip's media."""
    scale, targets = manifest["scale"]["name"], study_targets(manifest)
    traits = [{"name": t.name, "description": describe(t)} for t in targets]
    if not targets.is_big_five:
        for trait, target in zip(traits, targets):
            trait.update(values=[f"{v:g}" for v in scale_values(scale, target)], labels=scale_labels(scale, target))
    clips = {clip: {"file": str(name), "video": videos.get(clip), "series": details[clip].get("series")}
             for clip, name in zip(chosen[ID_COLUMN], chosen[FILE_COLUMN])}
    return {"study_id": manifest["study_id"], "sheet_columns": list(sheet_columns(targets)),
            "scale": {"name": scale, "values": [f"{v:g}" for v in manifest["scale"]["values"]], "labels": scale_labels(scale)},
            "traits": traits,
            "orders": orders, "clips": clips}


def write_page(path: Path, manifest: dict, orders: dict[str, list[str]], chosen: pd.DataFrame, details: dict[str, dict],
               videos: dict[str, str]) -> None:
    """Fill the template with the study's data (as inert JSON) and write it atomically."""
    payload = json.dumps(page_data(manifest, orders, chosen, details, videos)).replace("</", "<\\/")
    html = TEMPLATE.read_text().replace(PLACEHOLDER, payload)
    with atomic_output(path) as tmp:
        tmp.write_text(html)
