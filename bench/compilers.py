"""Compiled inference against eager: ``torch.compile`` (inductor, CPU) and ONNX Runtime, end to end.

Every number includes what a user pays once per process (compiling, or exporting and building the session), so
"pays" means: the whole run over the clips, compile included, beats plain eager ``predict_probs``. Shapes are the
engine's own (batches sorted by length, padded to a multiple of 32 frames), so both compilers see variable batch
and time axes: ``torch.compile`` with its default automatic dynamic shapes, ONNX exported with dynamic axes.
"Cached" numbers are what a later process would pay with the artefacts kept on disk: torch.compile with a filled
inductor cache (dynamo still traces), ONNX Runtime with the exported file kept (imports and session still paid).
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from torch import nn

from perfex.core.clips import ClipSet
from perfex.core.compute import cpu_supports_bf16
from perfex.infer.predict import predict_probs


class OrtModel(nn.Module):
    """An ONNX Runtime session behind the model interface ``predict_probs`` uses (forward, fixed_length, max_frames,
    n_logits, level_probabilities)."""

    def __init__(self, session: object, model: nn.Module, export_seconds: float = 0.0) -> None:
        super().__init__()
        self.session, self.fixed_length, self.max_frames = session, model.fixed_length, model.max_frames
        self.n_logits, self.level_probabilities, self.temperature = model.n_logits, model.level_probabilities, model.temperature
        self.export_seconds = export_seconds
        self.inputs = {i.name for i in session.get_inputs()}

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        feed = {"x": x.numpy(), "lengths": lengths.numpy(), "times": None if times is None else times.numpy()}
        return torch.from_numpy(self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})[0])


def timed_probs(model: nn.Module, clips: ClipSet, batch_size: int) -> tuple[float, np.ndarray]:
    """Seconds for one ``predict_probs`` pass over every clip, and its probabilities."""
    started = time.perf_counter()
    probs, _ = predict_probs(model, clips, None, batch_size)
    return time.perf_counter() - started, probs


def timed_probs_bf16(model: nn.Module, clips: ClipSet, batch_size: int) -> float:
    """Seconds for one eager bf16-autocast pass (after a small warm-up): the other way to be faster than fp32."""
    predict_probs(model, clips, np.arange(min(8, len(clips))), batch_size, bf16=True)
    started = time.perf_counter()
    predict_probs(model, clips, None, batch_size, bf16=True)
    return time.perf_counter() - started


def onnx_model(model: nn.Module, folder: Path) -> OrtModel:
    """Export ``model`` with dynamic batch and time axes and open it in ONNX Runtime (CPU, torch's thread count)."""
    import onnxruntime as ort

    started = time.perf_counter()
    x, lengths = torch.randn(2, 64, model.config.n_features), torch.tensor([64, 40])
    times = torch.arange(64, dtype=torch.float32)[None].expand(2, -1) / 30
    path = folder / "model.onnx"
    axes = {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, "times": {0: "batch", 1: "time"}, "logits": {0: "batch"}}
    torch.onnx.export(model, (x, lengths, times), str(path), input_names=["x", "lengths", "times"], output_names=["logits"],
                      dynamic_axes=axes, dynamo=False)
    exported = time.perf_counter() - started
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return OrtModel(ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]), model, exported)


@functools.cache
def import_onnx() -> tuple[str | None, float]:
    """(None, seconds the imports took) when ONNX export and ONNX Runtime are installed, else (why not, 0)."""
    started = time.perf_counter()
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        return f"not available ({err.name} not installed)", 0.0
    return None, time.perf_counter() - started


def measure_compiled(model: nn.Module, build, clips: ClipSet, batch_size: int, reference: np.ndarray,
                     import_seconds: float = 0.0) -> dict:
    """Build (compile or export) and run twice: the first pass plus the build (and its imports) is what a fresh
    process pays; the second pass is the steady state."""
    started = time.perf_counter()
    compiled = build(model)
    build_seconds = time.perf_counter() - started + import_seconds
    first, probs = timed_probs(compiled, clips, batch_size)
    second, _ = timed_probs(compiled, clips, batch_size)
    export = getattr(compiled, "export_seconds", 0.0)
    return {"build_seconds": build_seconds, "first_pass_seconds": first, "total_seconds": build_seconds + first,
            "warm_seconds": second, "export_seconds": export, "cached_total_seconds": build_seconds - export + first,
            "max_abs_diff": float(np.nanmax(np.abs(probs - reference)))}


def measure_torch_compile(model: nn.Module, clips: ClipSet, batch_size: int, reference: np.ndarray) -> dict:
    """torch.compile from an empty inductor cache, then again after a dynamo reset with that cache filled (what a
    second process would pay if the compiled kernels were kept on disk)."""
    with tempfile.TemporaryDirectory(prefix="perfex-inductor-") as cache, \
            mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache}):
        torch._dynamo.reset()
        entry = measure_compiled(model, torch.compile, clips, batch_size, reference)
        torch._dynamo.reset()
        started = time.perf_counter()
        timed_probs(torch.compile(model), clips, batch_size)
        entry["cached_total_seconds"] = time.perf_counter() - started
        torch._dynamo.reset()
    return entry


def compare_compilers(model: nn.Module, clips: ClipSet, batch_size: int = 64) -> dict:
    """Eager, torch.compile and ONNX Runtime on the same clips; each compiled entry has ``pays`` (end to end)."""
    model = model.eval()
    timed_probs(model, clips.subset(np.arange(min(8, len(clips)))), batch_size)
    eager, reference = timed_probs(model, clips, batch_size)
    result: dict = {"clips": len(clips), "eager_seconds": eager}
    if cpu_supports_bf16():
        result["eager_bf16_seconds"] = timed_probs_bf16(model, clips, batch_size)
    result["torch_compile"] = measure_torch_compile(model, clips, batch_size, reference)
    missing, import_seconds = import_onnx()
    if missing:
        result["onnxruntime"] = {"error": missing}
    else:
        with tempfile.TemporaryDirectory(prefix="perfex-onnx-") as folder:
            result["onnxruntime"] = measure_compiled(model, lambda m: onnx_model(m, Path(folder)),
                                                     clips, batch_size, reference, import_seconds)
    for name in ("torch_compile", "onnxruntime"):
        if "error" not in result[name]:
            result[name]["pays"] = result[name]["total_seconds"] < eager
            result[name]["pays_vs_bf16"] = result[name]["total_seconds"] < result.get("eager_bf16_seconds", eager)
    return result


def compiler_rows(family: str, result: dict) -> list[tuple[str, str, str]]:
    """Table rows: eager time, then each compiler's end-to-end time (build included) and its verdict."""
    eager = result["eager_seconds"]
    bf16 = result.get("eager_bf16_seconds")
    rows = [(f"compile {family}: eager", f"{result['clips']} clips in {eager:.2f} s",
             "predict_probs fp32" + (f"; eager bf16 {bf16:.2f} s" if bf16 else ""))]
    for name, label in (("torch_compile", "torch.compile"), ("onnxruntime", "ONNX Runtime")):
        entry = result[name]
        if "error" in entry:
            rows.append((f"compile {family}: {label}", entry["error"], "not measured"))
            continue
        rows.append((f"compile {family}: {label}",
                     f"{entry['total_seconds']:.2f} s (build {entry['build_seconds']:.2f} s), then {entry['warm_seconds']:.2f} s warm",
                     f"{'pays' if entry['pays'] else 'does not pay'} end to end ({eager / entry['total_seconds']:.2f}x eager fp32"
                     + f", {eager / entry['cached_total_seconds']:.2f}x with its artefacts cached"
                     + f"); max |dp| {entry['max_abs_diff']:.1e}"))
    return rows
