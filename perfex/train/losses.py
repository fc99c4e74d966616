"""Training losses over the 25-logit contract (5 traits x 5 levels) and the decode of each to level probabilities.

``ce``: softmax cross-entropy per trait. ``ordinal``: CORN (conditional ordinal
regression): per trait the first four logits are the conditional log-odds of "level > k given level >= k";
the fifth logit is unused. Both decode to five probabilities per trait, so test and deploy keep their output.
Targets of other kinds (``--targets``) take ``targets_loss``: each level target its own ``ce`` or CORN over its K logits,
each continuous target the squared error of its one logit against the standardised label, summed over targets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.outputs import decode_levels

from ..core.errors import PerfexError
from ..core.schema import BIG_FIVE, Targets

LOSSES = ("ce", "ordinal")
MODEL_OUTPUT = {"ce": "softmax", "ordinal": "corn"}  # the model output each loss trains


def _per_trait(logits: torch.Tensor, n_traits: int = len(BIG_FIVE)) -> torch.Tensor:
    """``[B, traits * levels]`` logits as ``[B, traits, levels]`` (float32)."""
    return logits.float().reshape(len(logits), n_traits, -1)


def cross_entropy(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each trait's levels, summed over traits, averaged over clips."""
    return _cross_entropy(_per_trait(logits, levels.shape[1]), levels)


def _cross_entropy(per_trait: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """``per_trait [B, T, K]`` logits against ``levels [B, T]``: cross-entropy summed over traits, mean over clips."""
    n_traits, n_levels = per_trait.shape[1:]
    per_clip = F.cross_entropy(per_trait.reshape(-1, n_levels), levels.reshape(-1), reduction="none")
    return per_clip.view(-1, n_traits).sum(dim=1).mean()


def corn_loss(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """CORN: binary cross-entropy of "level > k" on the clips with level >= k, for k = 0..K-2, summed over traits."""
    return _corn_loss(_per_trait(logits, levels.shape[1]), levels)


def _corn_loss(per_trait: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """CORN over ``per_trait [B, T, K]`` logits (the first K-1 used) against ``levels [B, T]``."""
    n_levels = per_trait.shape[-1]
    conditional = per_trait[..., : n_levels - 1]
    k = torch.arange(n_levels - 1, device=per_trait.device)
    levels = levels[..., None]
    at_risk = (levels >= k).float()
    targets = (levels > k).float()
    bce = F.binary_cross_entropy_with_logits(conditional, targets, reduction="none") * at_risk
    return bce.sum(dim=(1, 2)).mean()


def level_probabilities(logits: torch.Tensor, loss: str = "ce", n_traits: int = len(BIG_FIVE)) -> torch.Tensor:
    """Level probabilities [B, traits, levels] from logits trained with ``loss`` (the decode test/deploy must use)."""
    if loss in LOSSES:
        return decode_levels(_per_trait(logits, n_traits), MODEL_OUTPUT[loss])
    raise PerfexError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


LOSSES_BY_NAME = {"ce": _cross_entropy, "ordinal": _corn_loss}


def trait_loss(logits: torch.Tensor, levels: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """The training loss by name: ``ce`` or ``ordinal`` (CORN)."""
    if loss in LOSSES_BY_NAME:
        return LOSSES_BY_NAME[loss](_per_trait(logits, levels.shape[1]), levels)
    raise PerfexError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def targets_loss(logits: torch.Tensor, levels: torch.Tensor, scores: torch.Tensor, targets: Targets,
                 loss: str = "ce") -> torch.Tensor:
    """The training loss of ``targets`` laid out target by target in ``logits``: ``ce`` or CORN (``ordinal``) for each
    level target, squared error of the standardised value for each continuous one; summed over targets."""
    if loss not in LOSSES_BY_NAME:
        raise PerfexError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    total, start = logits.new_zeros((), dtype=torch.float32), 0
    for i, target in enumerate(targets):
        chunk = logits[:, start : start + target.width].float()
        start += target.width
        if target.continuous:
            value = (scores[:, i] - target.center) / target.scale
            known = torch.isfinite(value)
            total = total + ((chunk[:, 0] - torch.nan_to_num(value)) ** 2 * known).mean()
        else:
            total = total + LOSSES_BY_NAME[loss](chunk[:, None, :], levels[:, i : i + 1])
    return total


def score_loss(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Continuous targets: squared error of ``sigmoid(logit)`` against each known trait score, summed over traits."""
    known = torch.isfinite(scores)
    error = (torch.sigmoid(logits.float().reshape(scores.shape)) - torch.nan_to_num(scores)) ** 2 * known
    return error.sum(dim=1).mean()
