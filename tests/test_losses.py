"""Losses (ce, CORN ordinal) and their decoding to level probabilities."""

import numpy as np
import pytest
import torch
from torch import nn

from perfex.core.errors import PerfexError
from perfex.train.losses import cross_entropy, level_probabilities, trait_loss

pytestmark = pytest.mark.unit


def ordered_toy(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A scalar input; every trait's level is the input cut at four ordered thresholds, plus a little noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 1))
    levels = np.digitize(x + rng.normal(0, 0.15, (n, 5)), [-1.0, -0.35, 0.35, 1.0])
    return torch.tensor(x, dtype=torch.float32), torch.tensor(levels)


def test_corn_probabilities_are_distributions_and_ordinal_loss_learns_an_ordered_problem():
    torch.manual_seed(0)
    x, y = ordered_toy(800, seed=0)
    model = nn.Linear(1, 25)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        loss = trait_loss(model(x), y, "ordinal")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x_test, y_test = ordered_toy(400, seed=1)
    probs = level_probabilities(model(x_test), "ordinal").detach()
    torch.testing.assert_close(probs.sum(dim=-1), torch.ones(400, 5))
    assert (probs >= 0).all()
    accuracy = (probs.argmax(dim=-1) == y_test).float().mean().item()
    assert accuracy > 0.75, accuracy
    expected = (probs * torch.arange(5.0)).sum(dim=-1)[:, 0]
    order = torch.argsort(x_test[:, 0])
    assert (torch.diff(expected[order]) >= -1e-5).all()  # a linear CORN model is monotone in its input


def test_corn_of_zero_logits_halves_the_mass_at_each_step():
    probs = level_probabilities(torch.zeros(1, 25), "ordinal")[0, 0]
    torch.testing.assert_close(probs, torch.tensor([0.5, 0.25, 0.125, 0.0625, 0.0625]))


def test_cross_entropy_and_unknown_loss():
    logits = torch.zeros(2, 25)
    levels = torch.zeros(2, 5, dtype=torch.long)
    assert cross_entropy(logits, levels).item() == pytest.approx(5 * np.log(5))
    with pytest.raises(PerfexError, match="unknown loss 'hinge'; choose one of ce, ordinal"):
        trait_loss(logits, levels, "hinge")
