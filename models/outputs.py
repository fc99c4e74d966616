"""How logits become level probabilities: softmax per trait, CORN's conditional ordinal decode, or one score per trait;
and, for targets of different kinds (``decode_targets``), each target's own decode side by side.

A ``score`` model outputs one logit per trait; its score ``s = sigmoid(logit)`` in [0, 1] becomes the two-level
distribution on the neighbouring levels whose expected score is exactly ``s`` (so the most likely level is the
rounded score, and everything that reads level probabilities keeps working).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

OUTPUTS = ("softmax", "corn", "score")


def corn_probabilities(per_trait: torch.Tensor) -> torch.Tensor:
    """CORN logits ``[B, T, L]`` (the first L-1 are log-odds of "level > k given level >= k") -> probabilities ``[B, T, L]``."""
    # P(level > k) = prod_j<=k sigmoid(logit_j), as exp(cumsum(log sigmoid)): stable, and exportable to ONNX (cumprod is not)
    above = F.logsigmoid(per_trait[..., :-1]).cumsum(dim=-1).exp()
    ones, zeros = torch.ones_like(above[..., :1]), torch.zeros_like(above[..., :1])
    return torch.cat([ones, above], dim=-1) - torch.cat([above, zeros], dim=-1)


def score_probabilities(scores: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Scores ``[B, T]`` in [0, 1] -> ``[B, T, L]``: weight split between the two levels around ``s * (L - 1)``."""
    position = scores.clamp(0, 1) * (n_levels - 1)
    lower = position.floor().clamp(max=n_levels - 2)
    upper_weight = position - lower
    grid = torch.arange(n_levels, device=scores.device, dtype=scores.dtype)
    return ((grid == lower[..., None]) * (1 - upper_weight)[..., None] + (grid == lower[..., None] + 1) * upper_weight[..., None])


def decode_levels(per_trait: torch.Tensor, output: str, n_levels: int = 5) -> torch.Tensor:
    """Probabilities ``[B, T, L]`` from per-trait logits (``[B, T, L]``, or ``[B, T, 1]`` for ``score``) read as ``output``."""
    if output == "score":
        return score_probabilities(torch.sigmoid(per_trait[..., 0]), n_levels)
    return corn_probabilities(per_trait) if output == "corn" else per_trait.softmax(dim=-1)


def decode_targets(logits: torch.Tensor, target_levels: tuple[int, ...], output: str) -> torch.Tensor:
    """Logits ``[B, sum of widths]`` laid out target by target (K logits for K levels, one for a continuous score) ->
    ``[B, targets, L]``: each level target's probabilities zero-padded to L (the widest target), each continuous
    target's value in column 0."""
    width = max(max(target_levels), 1)
    rows, start = [], 0
    for levels in target_levels:
        chunk = logits[:, start : start + max(levels, 1)]
        start += max(levels, 1)
        row = chunk if levels == 0 else decode_levels(chunk[:, None, :], output)[:, 0]
        rows.append(F.pad(row, (0, width - row.shape[1])))
    return torch.stack(rows, dim=1)
