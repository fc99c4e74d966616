"""``select``: write a study folder (clips.csv, one blank sheet per rater, study.json, optionally rate.html)."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ...core.errors import PerfexError
from ...data.readers import expand_inputs, iter_clip_chunks
from ...data.labels import BINNINGS
from ...core.schema import FILE_COLUMN, ID_COLUMN, Targets
from ...core.tables import atomic_output
from .page import PLOTTED_AUS, write_page
from ...checkpoint.provenance import MANIFEST, describe_inputs, make_study_id, write_json
from .options import SelectConfig
from .scale import scale_values
from .select import choose, read_predictions
from .sheets import parse_raters, rater_order, sheet_name, sheet_text

SERIES_POINTS = 240


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PerfexError(f"--out {out} is a file; pass a folder for the study")
    if out.exists() and any(out.iterdir()) and not force:
        raise PerfexError(f"{out} already exists and is not empty; pass --force to overwrite it or choose another --out")


def _clip_details(inputs: list[Path], wanted: list[str], config: SelectConfig, keep_series: bool) -> dict[str, dict]:
    """Frame count, time range and (for the page) a thinned AU series of every chosen clip, read from the input."""
    found: dict[str, dict] = {}
    chunks = iter_clip_chunks(inputs, nan_policy=config.nan_policy, min_confidence=config.min_confidence)
    wanted_set = set(wanted)
    for chunk in chunks:
        clips = chunk.clips
        for i, clip in enumerate(clips.ids.astype(str)):
            if clip not in wanted_set:
                continue
            start, stop = clips.offsets[i], clips.offsets[i + 1]
            times = clips.times[start:stop]
            detail = {"n_frames": int(stop - start), "start_s": float(times[0]) if len(times) else 0.0,
                      "end_s": float(times[-1]) if len(times) else 0.0}
            if keep_series:
                detail["series"] = _thin_series(clips.features[start:stop], times, clips.feature_names)
            found[clip] = detail
    missing = [clip for clip in wanted if clip not in found]
    if missing:
        raise PerfexError(f"clip {missing[0]} of the predictions is not in --data ({len(missing)} missing); "
                          "pass the input that the deploy run read")
    return found


def _thin_series(features: np.ndarray, times: np.ndarray, names: tuple[str, ...]) -> dict:
    """At most SERIES_POINTS evenly spaced frames of the plotted AUs (enough for a plot, small for the page)."""
    keep = np.unique(np.linspace(0, len(times) - 1, min(SERIES_POINTS, len(times))).astype(int)) if len(times) else []
    series = {"t": [round(float(t), 2) for t in times[keep]]}
    for au in PLOTTED_AUS:
        if au in names:
            series[au] = [round(float(v), 2) for v in features[keep, names.index(au)]]
    return series


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")


def _write_text(text: str, path: Path) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def _clips_table(chosen: pd.DataFrame, reasons: list[str], details: dict[str, dict], study_id: str,
                 targets: Targets) -> pd.DataFrame:
    table = pd.DataFrame({"study_id": study_id, ID_COLUMN: chosen[ID_COLUMN], FILE_COLUMN: chosen[FILE_COLUMN]})
    for key in ("n_frames", "start_s", "end_s"):
        table[key] = [details[clip][key] for clip in chosen[ID_COLUMN]]
    table["reason"] = reasons
    for trait in targets.names:
        table[f"predicted_{trait}"] = chosen[trait].to_numpy()
        table[f"predicted_{trait}_score"] = chosen[f"{trait}_score"].to_numpy()
    return table


def _videos(chosen: pd.DataFrame, video_dir: str | None, out: Path) -> dict[str, str]:
    """Copy the chosen clips' videos found in ``video_dir`` into out/videos; {clip ID: path relative to out}."""
    if video_dir is None:
        return {}
    if not Path(video_dir).is_dir():
        raise PerfexError(f"--videos {video_dir} is not a folder; pass the folder that holds the clips' video files")
    found = {}
    for clip, name in zip(chosen[ID_COLUMN], chosen[FILE_COLUMN]):
        source = Path(video_dir) / str(name)
        if source.is_file():
            (out / "videos").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, out / "videos" / source.name)
            found[clip] = f"videos/{source.name}"
    return found


def create_study(config: SelectConfig) -> dict:
    """Choose the clips and write the study folder; returns the manifest."""
    out = Path(config.out)
    _check_out(out, config.force)
    scale_values(config.scale)
    if config.label_binning not in BINNINGS[1:]:
        raise PerfexError(f"--label-binning {config.label_binning!r}: use one of {', '.join(BINNINGS[1:])}")
    raters = parse_raters(config.raters)
    inputs = expand_inputs(config.data)
    frame, targets = read_predictions(config.predictions)
    taken, reasons = choose(frame, config.strategy, config.n, per_source=config.per_source, kind=config.uncertainty,
                            seed=config.seed, targets=targets)
    chosen = frame.iloc[taken].reset_index(drop=True)
    clip_ids = chosen[ID_COLUMN].tolist()
    files = describe_inputs([Path(config.predictions), *inputs])
    settings = {k: v for k, v in asdict(config).items() if k not in ("out", "force", "page", "videos", "predictions", "data")}
    study_id = make_study_id(files, settings)
    details = _clip_details(inputs, clip_ids, config, keep_series=config.page)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(_clips_table(chosen, reasons, details, study_id, targets), out / "clips.csv")
    orders = {rater: rater_order(clip_ids, i, config.seed) for i, rater in enumerate(raters)}
    for rater, order in orders.items():
        _write_text(sheet_text(study_id, rater, order, targets=targets), out / sheet_name(rater))
    manifest = {"study_id": study_id, "predictions": {**files[0], "path": str(Path(files[0]["path"]).resolve())},
                "data": [{**f, "path": str(Path(f["path"]).resolve())} for f in files[1:]], "settings": settings,
                "scale": {"name": config.scale, "values": list(scale_values(config.scale)),
                          "to_unit": "(answer - lowest) / (highest - lowest)"},
                "label_binning": config.label_binning, "raters": raters, "clip_ids": clip_ids,
                "sheets": {rater: sheet_name(rater) for rater in raters}}
    if not targets.is_big_five:  # each target answered on its own levels (on the grid scale: k/(K-1))
        manifest["targets"] = targets.as_list()
        manifest["scale"]["values_per_target"] = {t.name: list(scale_values(config.scale, t)) for t in targets}
    if config.page:
        videos = _videos(chosen, config.videos, out)
        write_page(out / "rate.html", manifest, orders, chosen, details, videos)
        manifest["page"] = "rate.html"
    write_json(manifest, out / MANIFEST)
    return manifest
