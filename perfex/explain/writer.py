"""Collect per-clip explanations across deploy chunks and write them as one NPZ file (plus PNGs of the first clips)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.clips import ClipSet
from ..core.errors import PerfexError
from ..core.schema import BIG_FIVE, Targets
from ..core.tables import atomic_output, refuse_overwrite
from .attributions import BATCH_SIZE, N_STEPS, target_text
from .clips import ClipExplanations, explain_clips
from .plots import plot_clip_explanation

FILE_NAME = "explanations.npz"


class ExplanationWriter:
    """``add`` the explanations of each chunk's predicted clips; ``close`` writes ``<dir>/explanations.npz``.

    The first ``plots`` clips also get ``<dir>/clip_<ID>.png``. Nothing is overwritten without ``force``. ``targets``:
    the checkpoint's (the Big Five by default).
    """

    def __init__(self, out_dir: str | Path, feature_names: list[str], baseline: np.ndarray, *, plots: int = 10,
                 force: bool = False, targets: Targets = BIG_FIVE) -> None:
        self.out_dir, self.targets = Path(out_dir), targets
        refuse_overwrite(self.out_dir / FILE_NAME, force)
        self.feature_names, self.baseline, self.plots_left = list(feature_names), np.asarray(baseline, np.float32), plots
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in ("ids", "files", "lengths", "levels", "deltas", "attributions",
                                                                   "attention", "features", "times")}
        self.plotted: list[Path] = []

    def add(self, clips: ClipSet, index: np.ndarray, levels: np.ndarray, explained: ClipExplanations) -> None:
        """Store clips ``index`` of ``clips`` with their predicted ``levels [N, targets]`` and explanations."""
        for k, clip in enumerate(np.asarray(index, dtype=np.int64)):
            rows = slice(clips.offsets[clip], clips.offsets[clip + 1])
            n_frames = rows.stop - rows.start
            attention = explained.attention[k] if explained.attention is not None else np.full(n_frames, np.nan)
            times = clips.times[rows] - (clips.times[rows][0] if rows.stop > rows.start else 0)
            values = {"ids": str(clips.ids[clip]), "files": str(clips.files[clip]), "lengths": n_frames,
                      "levels": levels[k], "deltas": explained.deltas[k], "attributions": explained.attributions[k],
                      "attention": attention.astype(np.float32), "features": clips.features[rows], "times": times}
            for key, value in values.items():
                self.parts[key].append(value)
            if self.plots_left > 0:
                self._plot(values, explained.attention is not None)

    def explain(self, model: nn.Module, clips: ClipSet, index: np.ndarray, levels: np.ndarray, *,
                device: torch.device | str = "cpu", batch_size: int = BATCH_SIZE, n_steps: int = N_STEPS) -> None:
        """Explain clips ``index`` of ``clips`` for their predicted ``levels [N, targets]`` (0 for a continuous target)
        and store them (one deploy chunk)."""
        baseline = torch.as_tensor(self.baseline)
        self.add(clips, index, levels, explain_clips(model, clips, index, levels, batch_size=batch_size, device=device,
                                                     n_steps=n_steps, baseline=baseline, targets=self.targets))

    def explain_rows(self, model: nn.Module, clips: ClipSet, values: np.ndarray, *, device: torch.device | str = "cpu",
                     batch_size: int = BATCH_SIZE, n_steps: int = N_STEPS) -> None:
        """Explain the clips a deploy chunk predicted: ``values [N, targets]`` are its target columns for ``clips``
        (a level's grid value k / (K - 1), a continuous value; NaN where the clip was not predicted)."""
        predicted = np.flatnonzero(~np.isnan(values).any(axis=1))
        steps = np.array([0 if t.continuous else t.levels - 1 for t in self.targets])
        levels = np.rint(values[predicted] * steps).astype(np.int64)
        self.explain(model, clips, predicted, levels, device=device, batch_size=batch_size, n_steps=n_steps)

    @property
    def max_delta(self) -> float:
        """Largest |completeness delta| so far: |sum of attributions - (f(clip) - f(baseline))| (NaN before any clip)."""
        return float(np.abs(np.asarray(self.parts["deltas"])).max()) if self.parts["deltas"] else float("nan")

    def _plot(self, values: dict, with_attention: bool) -> None:
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in values["ids"])
        path = self.out_dir / f"clip_{name}.png"
        self.plotted.append(plot_clip_explanation(values["features"], values["times"], values["attributions"],
                                                  values["attention"] if with_attention else None, values["levels"],
                                                  self.feature_names, path, values["ids"], self.targets))
        self.plots_left -= 1

    def close(self) -> Path:
        """Write every stored clip to one compressed NPZ (atomically); returns its path."""
        p = self.parts
        n_features, n_targets = len(self.feature_names), len(self.targets)
        offsets = np.concatenate([[0], np.cumsum(np.asarray(p["lengths"], dtype=np.int64))])
        cat = lambda key, shape: np.concatenate(p[key]) if p[key] else np.zeros(shape, np.float32)  # noqa: E731
        arrays = {
            "clip_id": np.asarray(p["ids"], dtype=str), "files": np.asarray(p["files"], dtype=str), "offsets": offsets,
            "levels": np.asarray(p["levels"], dtype=np.int64).reshape(-1, n_targets),
            "deltas": np.asarray(p["deltas"], dtype=np.float32).reshape(-1, n_targets),
            "attributions": cat("attributions", (0, n_targets, n_features)).astype(np.float32),
            "attention": cat("attention", (0,)), "features": cat("features", (0, n_features)).astype(np.float32),
            "times": cat("times", (0,)).astype(np.float32), "feature_names": np.asarray(self.feature_names, dtype=str),
            "traits": np.asarray(self.targets.names, dtype=str), "baseline": self.baseline,
            "target": np.asarray(target_text(self.targets)),
        }
        if not self.targets.is_big_five:  # Big Five files keep their keys; others say each target's kind
            arrays["target_levels"] = np.asarray(self.targets.level_counts, dtype=np.int64)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / FILE_NAME
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path


@dataclass
class Explanations:
    """A written explanations.npz: ``clip(id)`` returns one clip's arrays."""

    arrays: dict[str, np.ndarray]

    def clip(self, clip_id: str) -> dict[str, np.ndarray]:
        """features [T, F], times [T], attributions [T, targets, F], attention [T] (NaN without attention), levels,
        deltas."""
        found = np.flatnonzero(self.arrays["clip_id"] == str(clip_id))
        if len(found) == 0:
            raise PerfexError(f"clip {clip_id} is not in these explanations; only predicted clips are explained")
        k = int(found[0])
        rows = slice(self.arrays["offsets"][k], self.arrays["offsets"][k + 1])
        per_frame = {key: self.arrays[key][rows] for key in ("features", "times", "attributions", "attention")}
        return per_frame | {"levels": self.arrays["levels"][k], "deltas": self.arrays["deltas"][k]}


def load_explanations(path: str | Path) -> Explanations:
    """Read an explanations.npz written by ExplanationWriter (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return Explanations({key: data[key] for key in data.files})
