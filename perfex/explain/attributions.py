"""Integrated-gradients attributions per frame and AU, and attention weights, for a padded batch of clips.

Target, per predicted target: a level target's (a Big Five trait's, a binary or K-level target's) log-probability
(the model's decode of its logits) of the level the model predicted; a continuous target's predicted value in the
label's own units (the model's standardised output times the training labels' standard deviation, plus their mean).
Baseline: the training mean of every feature in raw units (the model's ``feature_mean`` buffer), i.e. a normalised
input of zero, the same for every clip; padding frames take their own value as baseline, so their attribution is
exactly zero.
"""

from __future__ import annotations

import inspect
from contextlib import nullcontext

import torch
from captum.attr import IntegratedGradients
from torch import nn

from ..core.schema import BIG_FIVE, Target, Targets

N_STEPS = 32
BATCH_SIZE = 4  # windows per integrated-gradients batch: each is expanded n_steps times; small batches run fastest on CPUs
TARGET = "log-probability of the predicted level of each trait"
CONTINUOUS_TARGET = "predicted value (in the label's units) of each continuous target"


def target_text(targets: Targets = BIG_FIVE) -> str:
    """What the attributions of ``targets`` explain (``TARGET`` for the Big Five), as stored with them."""
    if targets.is_big_five:
        return TARGET
    kinds = [TARGET.replace("trait", "level target")] if not all(t.continuous for t in targets) else []
    return "; ".join(kinds + ([CONTINUOUS_TARGET] if targets.any_continuous else []))


def model_targets(model: nn.Module) -> Targets:
    """The targets a model's outputs are laid out for, unnamed (continuous ones in standardised units)."""
    levels = model.target_levels or (model.config.n_levels,) * model.config.n_traits
    return Targets(tuple(Target(f"target_{i}", k) for i, k in enumerate(levels)))


def has_attention(model: nn.Module) -> bool:
    """Whether ``model.forward`` can return attention weights (the hybrid model)."""
    return "return_attention" in inspect.signature(model.forward).parameters


def default_baseline(model: nn.Module, n_features: int) -> torch.Tensor:
    """The model's training mean in raw feature units (zeros for the original models, which take raw input)."""
    return model.feature_mean.detach().float().clone() if model.normalizes else torch.zeros(n_features)


def _target_output(model: nn.Module, index: int, target: Target):
    """forward(x, lengths, times, levels) -> [B] the explained output of target ``index``: the log-probability of
    ``levels[:, index]``, or a continuous target's value in the label's units."""
    def forward(x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        outputs = model.level_probabilities(model(x, lengths, times))[:, index]
        if target.continuous:
            return outputs[:, 0] * target.scale + target.center
        return outputs.clamp(min=1e-12).log().gather(1, levels[:, index, None]).squeeze(1)
    return forward


def _no_cudnn(device: torch.device):
    """cuDNN's LSTM has no backward pass in eval mode: switch cuDNN off for attributions on a GPU."""
    return torch.backends.cudnn.flags(enabled=False) if device.type == "cuda" else nullcontext()


def explain_batch(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor, times: torch.Tensor, target_levels: torch.Tensor,
                  baseline: torch.Tensor | None = None, n_steps: int = N_STEPS,
                  internal_batch_size: int | None = None,
                  targets: Targets | None = None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(attributions [B, T, targets, F], attention [B, T] or None, completeness deltas [B, targets]) for a padded batch.

    ``target_levels [B, targets]`` are the levels to explain (the predicted ones; any value for continuous targets);
    ``targets`` the model's (default ``model_targets``: continuous values in standardised units); ``baseline [F]``
    defaults to the training mean. Padding frames get attribution and attention exactly zero; the model's train/eval
    mode is kept.
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
        for index, target in enumerate(targets or model_targets(model)):
            method = IntegratedGradients(_target_output(model, index, target))
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
