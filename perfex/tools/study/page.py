"""The rating page: one self-contained HTML file (no server, no network) that writes a rater's sheet as CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ...core.schema import FILE_COLUMN, ID_COLUMN, TRAITS
from ...core.tables import atomic_output
from .scale import TRAIT_DESCRIPTIONS, scale_labels
from .sheets import SHEET_COLUMNS

TEMPLATE = Path(__file__).with_name("rate_template.html")
PLACEHOLDER = "/*STUDY_DATA*/"
PLOTTED_AUS = ("AU01_r", "AU04_r", "AU06_r", "AU12_r", "AU15_r", "AU45_r")


def page_data(manifest: dict, orders: dict[str, list[str]], chosen: pd.DataFrame, details: dict[str, dict],
              videos: dict[str, str]) -> dict:
    """Everything the page shows: study ID, scale, traits with descriptions, each rater's order, each clip's media."""
    scale = manifest["scale"]["name"]
    clips = {clip: {"file": str(name), "video": videos.get(clip), "series": details[clip].get("series")}
             for clip, name in zip(chosen[ID_COLUMN], chosen[FILE_COLUMN])}
    return {"study_id": manifest["study_id"], "sheet_columns": list(SHEET_COLUMNS),
            "scale": {"name": scale, "values": [f"{v:g}" for v in manifest["scale"]["values"]], "labels": scale_labels(scale)},
            "traits": [{"name": t, "description": TRAIT_DESCRIPTIONS[t]} for t in TRAITS],
            "orders": orders, "clips": clips}


def write_page(path: Path, manifest: dict, orders: dict[str, list[str]], chosen: pd.DataFrame, details: dict[str, dict],
               videos: dict[str, str]) -> None:
    """Fill the template with the study's data (as inert JSON) and write it atomically."""
    payload = json.dumps(page_data(manifest, orders, chosen, details, videos)).replace("</", "<\\/")
    html = TEMPLATE.read_text().replace(PLACEHOLDER, payload)
    with atomic_output(path) as tmp:
        tmp.write_text(html)
