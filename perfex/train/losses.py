"""Training losses over the 25-logit contract (5 traits x 5 levels) and the decode of each to level probabilities.

``ce``: softmax cross-entropy per trait. ``ordinal``: CORN (conditional ordinal
regression): per trait the first four logits are the conditional log-odds of "level > k given level >= k";
the fifth logit is unused. Both decode to five probabilities per trait, so test and deploy keep their output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.outputs import decode_levels

from ..core.errors import PerfexError

N_TRAITS, N_LEVELS = 5, 5
LOSSES = ("ce", "ordinal")
MODEL_OUTPUT = {"ce": "softmax", "ordinal": "corn"}  # the model output each loss trains


def _per_trait(logits: torch.Tensor) -> torch.Tensor:
    return logits.float().reshape(-1, N_TRAITS, N_LEVELS)


def cross_entropy(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each trait's five levels, summed over traits, averaged over clips."""
    per_trait = F.cross_entropy(_per_trait(logits).reshape(-1, N_LEVELS), levels.reshape(-1), reduction="none")
    return per_trait.view(-1, N_TRAITS).sum(dim=1).mean()


def corn_loss(logits: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """CORN: binary cross-entropy of "level > k" on the clips with level >= k, for k = 0..3, summed over traits."""
    conditional = _per_trait(logits)[..., : N_LEVELS - 1]
    k = torch.arange(N_LEVELS - 1, device=logits.device)
    levels = levels[..., None]
    at_risk = (levels >= k).float()
    targets = (levels > k).float()
    bce = F.binary_cross_entropy_with_logits(conditional, targets, reduction="none") * at_risk
    return bce.sum(dim=(1, 2)).mean()


def level_probabilities(logits: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """Level probabilities [B, 5, 5] from logits trained with ``loss`` (the decode test/deploy must use)."""
    if loss in LOSSES:
        return decode_levels(_per_trait(logits), MODEL_OUTPUT[loss])
    raise PerfexError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def trait_loss(logits: torch.Tensor, levels: torch.Tensor, loss: str = "ce") -> torch.Tensor:
    """The training loss by name: ``ce`` or ``ordinal`` (CORN)."""
    if loss == "ce":
        return cross_entropy(logits, levels)
    if loss == "ordinal":
        return corn_loss(logits, levels)
    raise PerfexError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def score_loss(logits: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Continuous targets: squared error of ``sigmoid(logit)`` against each known trait score, summed over traits."""
    known = torch.isfinite(scores)
    error = (torch.sigmoid(logits.float().reshape(scores.shape)) - torch.nan_to_num(scores)) ** 2 * known
    return error.sum(dim=1).mean()
