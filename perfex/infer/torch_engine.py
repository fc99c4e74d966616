"""Deploy on torch: any checkpoint (original .pt files too), CPU or GPU, fp32 or bf16, and --explain."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..core.clips import ClipSet
from ..checkpoint.io import load_checkpoint
from ..core.compute import resolve_precision, use_threads
from ..core.distributed import pick_device
from ..core.schema import BIG_FIVE, Targets
from .engine import Engine
from ..data.options import DeployConfig
from .predict import predict_probs


def torch_engine(model: nn.Module, config: DeployConfig, device: torch.device | str,
                 feature_names: Sequence[str] = (), targets: Targets = BIG_FIVE) -> Engine:
    """``model`` (loaded, on ``device``) at the configured precision; with --explain, its explanation writer."""
    device = torch.device(device)
    bf16 = resolve_precision(config.run.precision, device) == "bf16"

    def predict(clips: ClipSet, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return predict_probs(model, clips, index, config.run.batch_size, device, bf16=bf16)

    engine = Engine("torch", model.config.output, predict, targets=targets)
    if config.deploy.explain:
        from ..explain import ExplanationWriter, default_baseline

        names = list(feature_names)
        writer = ExplanationWriter(config.deploy.explain, names, default_baseline(model, len(names)).cpu().numpy(),
                                   plots=config.deploy.explain_plots, force=config.deploy.force, targets=targets)
        engine.explainer = writer
        engine.explain = lambda clips, levels: writer.explain_rows(model, clips, levels, device=device)
    return engine


def load_torch_engine(config: DeployConfig, weights: Path) -> Engine:
    """The checkpoint loaded on the configured device and thread count, as an engine."""
    device = pick_device(config.run.device)
    use_threads(config.run.threads)
    model, meta = load_checkpoint(weights, family=config.family, map_location=str(device))
    return torch_engine(model, config, device, meta.feature_names, meta.target_set)
