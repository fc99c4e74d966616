"""One code path for a single process and for torchrun DistributedDataParallel (gloo on CPU, nccl on CUDA)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .compute import use_threads
from .errors import PerfexError


@dataclass(frozen=True)
class Context:
    """Where this process runs and which rank it is; ``world_size == 1`` outside torchrun."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(flag: str, local_rank: int = 0) -> torch.device:
    """``auto`` takes CUDA when present; ``cuda`` without a GPU is an error, not a silent fallback."""
    if flag not in ("auto", "cpu", "cuda"):
        raise PerfexError(f"--device {flag!r} is not one of auto, cpu, cuda")
    if flag == "cuda" and not torch.cuda.is_available():
        raise PerfexError("--device cuda was asked for but PyTorch sees no CUDA GPU; use --device cpu or auto")
    if flag == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def setup(device_flag: str, threads: int | None = None) -> Context:
    """Join the torchrun process group when launched by torchrun; otherwise a one-process context.

    CPU threads: ``threads``, else ``OMP_NUM_THREADS``, else the usable cores shared among this machine's ranks."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_flag, local_rank)
    use_threads(threads, int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size))))
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def gather_objects(context: Context, value: object) -> list[object]:
    """Every rank's ``value``, in rank order (just ``[value]`` in a single process)."""
    if not context.distributed:
        return [value]
    gathered: list[object] = [None] * context.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def mean_across_ranks(context: Context, value: float, weight: float) -> float:
    """Weighted mean of a per-rank scalar over all ranks."""
    if not context.distributed:
        return value
    pair = torch.tensor([value * weight, weight], dtype=torch.float64, device=context.device)
    dist.all_reduce(pair)
    return float(pair[0] / pair[1])


def barrier(context: Context) -> None:
    if context.distributed:
        dist.barrier()


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()
