"""How logits become level probabilities: softmax per trait, or CORN's conditional ordinal decode."""

from __future__ import annotations

import torch

OUTPUTS = ("softmax", "corn")


def corn_probabilities(per_trait: torch.Tensor) -> torch.Tensor:
    """CORN logits ``[B, T, L]`` (the first L-1 are log-odds of "level > k given level >= k") -> probabilities ``[B, T, L]``."""
    above = torch.sigmoid(per_trait[..., :-1]).cumprod(dim=-1)  # P(level > k)
    ones, zeros = torch.ones_like(above[..., :1]), torch.zeros_like(above[..., :1])
    return torch.cat([ones, above], dim=-1) - torch.cat([above, zeros], dim=-1)


def decode_levels(per_trait: torch.Tensor, output: str) -> torch.Tensor:
    """Probabilities ``[B, T, L]`` from per-trait logits ``[B, T, L]`` read as ``output``."""
    return corn_probabilities(per_trait) if output == "corn" else per_trait.softmax(dim=-1)
