"""The interface deploy runs a model through, on torch or ONNX Runtime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.clips import ClipSet
from ..core.errors import PerfexError
from ..core.schema import BIG_FIVE, Targets

INPUT_NAMES = ("x", "lengths", "times")  # the exported ONNX graph's inputs


class ExportError(PerfexError):
    """A checkpoint could not be exported for ONNX Runtime."""


@dataclass
class Engine:
    """What turns clips into predictions, whichever runtime runs it: ``predict(clips, index)`` -> (outputs
    [n, targets, L] as ``perfex.core.schema`` lays them out, windows per clip [n]); with --explain (torch only),
    ``explain(clips, levels)`` and its writer."""

    runtime: str
    output: str
    predict: Callable[[ClipSet, np.ndarray], tuple[np.ndarray, np.ndarray]]
    explain: Callable[[ClipSet, np.ndarray], None] | None = None
    explainer: object | None = None
    targets: Targets = BIG_FIVE
