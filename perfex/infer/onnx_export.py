"""Export a checkpoint for ONNX Runtime: one graph from (frames, lengths, times) to level probabilities."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from .engine import INPUT_NAMES, ExportError

OPSET = 17


class LevelProbabilities(nn.Module):
    """``model`` followed by its own decoding (temperatures, softmax / CORN / score, each target's own):
    outputs [B, targets, L]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        return self.model.level_probabilities(self.model(x, lengths, times))


def export_probabilities(model: nn.Module, path: Path) -> Path:
    """Write the graph of ``model`` to ``path`` (atomically: a crash never leaves half a file), dynamic batch and
    time axes."""
    graph = LevelProbabilities(model).eval()
    x = torch.randn(2, 64, model.config.n_features)
    lengths, times = torch.tensor([64, 40]), torch.arange(64, dtype=torch.float32)[None].expand(2, -1) / 30
    axes = {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "times": {0: "time_rows", 1: "time"},  # B or 1
            "probabilities": {0: "batch"}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    except OSError as err:
        raise ExportError(f"the export cache {path.parent} cannot be written ({err.strerror}); "
                          "set PERFEX_CACHE to a writable folder") from None
    os.close(handle)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on the LSTM and slices; tests compare the graph with torch
            torch.onnx.export(graph, (x, lengths, times), temporary, input_names=list(INPUT_NAMES),
                              output_names=["probabilities"], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        os.replace(temporary, path)
    except RuntimeError as err:  # what torch.onnx raises for an op or shape it cannot export
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"the {model.name} model could not be exported for ONNX Runtime ({first[:200]})") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
