"""How a run uses the machine: CPU threads, bf16 support, progress bars only on a terminal."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from .errors import PerfexError

if TYPE_CHECKING:  # torch is imported by the functions that need it: ONNX Runtime deploy never loads it
    import torch


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not every core of the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_count(requested: int | None, ranks_on_this_machine: int = 1) -> int:
    """``--threads`` when given, else ``OMP_NUM_THREADS`` when set, else the usable cores shared among local ranks."""
    if requested is not None:
        if requested < 1:
            raise PerfexError(f"--threads {requested} must be at least 1")
        return requested
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env)
    return max(1, usable_cores() // max(ranks_on_this_machine, 1))


def use_threads(requested: int | None, ranks_on_this_machine: int = 1) -> int:
    """Set torch's intra-op thread count for this process; returns it."""
    import torch

    count = thread_count(requested, ranks_on_this_machine)
    torch.set_num_threads(count)
    return count


def cpu_supports_bf16() -> bool:
    """True when oneDNN reports native bf16 kernels on this CPU (AVX-512 bf16 or AMX), never assumed."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> what pays on this device (see docs/performance.md: bf16 only where it keeps the predicted levels); else as given."""
    if precision != "auto":
        if precision == "bf16" and device.type == "cpu" and not cpu_supports_bf16():
            raise PerfexError("--precision bf16: this CPU has no native bf16 support (oneDNN); use --precision fp32")
        return precision
    if device.type == "cuda":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return AUTO_CPU_PRECISION


# Chosen by bench/bench.py's precision rows on the shipped weights (docs/performance.md): see there.
AUTO_CPU_PRECISION = "fp32"


def show_progress(wanted: bool) -> bool:
    """Progress bars draw only when asked and stderr is a terminal (a log file gets none)."""
    return wanted and sys.stderr.isatty()
