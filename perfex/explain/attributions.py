"""Integrated-gradients attributions per frame and AU, and attention weights, for a padded batch of clips.

Target: for every trait, the log-probability (the model's decode of its logits) of the level the model
predicted. Baseline: the training mean of every feature in raw units (the model's ``feature_mean``
buffer), i.e. a normalised input of zero, the same for every clip; padding frames take their own value
as baseline, so their attribution is exactly zero.
"""

from __future__ import annotations

import inspect
from contextlib import nullcontext

import torch
from captum.attr import IntegratedGradients
from torch import nn

from ..core.schema import TRAITS

N_STEPS = 32
BATCH_SIZE = 4  # windows per integrated-gradients batch: each is expanded n_steps times; small batches run fastest on CPUs
TARGET = "log-probability of the predicted level of each trait"


def has_attention(model: nn.Module) -> bool:
    """Whether ``model.forward`` can return attention weights (the hybrid model)."""
    return "return_attention" in inspect.signature(model.forward).parameters


def default_baseline(model: nn.Module, n_features: int) -> torch.Tensor:
    """The model's training mean in raw feature units (zeros for the original models, which take raw input)."""
    return model.feature_mean.detach().float().clone() if model.normalizes else torch.zeros(n_features)


def _trait_output(model: nn.Module, trait: int):
    """forward(x, lengths, times, levels) -> [B] log-probability of ``levels[:, trait]`` for ``trait``."""
    def forward(x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        probs = model.level_probabilities(model(x, lengths, times))
        return probs[:, trait].clamp(min=1e-12).log().gather(1, levels[:, trait, None]).squeeze(1)
    return forward


def _no_cudnn(device: torch.device):
    """cuDNN's LSTM has no backward pass in eval mode: switch cuDNN off for attributions on a GPU."""
    return torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else nullcontext()


def explain_batch(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor, target_levels: torch.Tensor,
                  baseline: torch.Tensor | None = None, n_steps: int = N_STEPS,
                  internal_batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(attributions [B, T, 5, F], attention [B, T] or None, completeness deltas [B, 5]) for a padded batch.

    ``target_levels [B, 5]`` are the levels to explain (the predicted ones); ``baseline [F]`` defaults to the
    training mean. Padding frames get attribution and attention exactly zero; the model's train/eval mode is kept.
    """
    was_training = model.training
    model.eval()
    device = x.device
    mask = torch.arange(x.shape[1], device=device)[None, :] < lengths.to(device)[:, None]
    base = (baseline if baseline is not None else default_baseline(model, x.shape[2])).to(device, x.dtype)
    baselines = torch.where(mask[:, :, None], base.expand_as(x), x)
    levels = target_levels.to(device=device, dtype=torch.long)
    extra = (lengths.to(device), times.to(device), levels)
    attributions, deltas = [], []
    with _no_cudnn(device):
        for trait in range(len(TRAITS)):
            method = IntegratedGradients(_trait_output(model, trait))
            attr, delta = method.attribute(x, baselines=baselines, additional_forward_args=extra, n_steps=n_steps,
                                           internal_batch_size=internal_batch_size, return_convergence_delta=True)
            attributions.append(attr.detach() * mask[:, :, None])
            deltas.append(delta.detach())
    attention = None
    if has_attention(model):
        with torch.no_grad():
            attention = model(x, lengths.to(device), times.to(device), return_attention=True)[1].float()
    model.train(was_training)
    return torch.stack(attributions, dim=2), attention, torch.stack(deltas, dim=1)
