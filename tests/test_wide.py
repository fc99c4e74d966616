"""The statistics path: exact masked statistics, zero start, and a model that matches logistic regression on mean-only signal."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from models.wide import StatisticsPath, clip_statistics

pytestmark = pytest.mark.unit


def test_clip_statistics_ignore_padding():
    x = torch.tensor([[[1.0], [3.0], [99.0]], [[2.0], [2.0], [2.0]]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    stats = clip_statistics(x, mask)
    torch.testing.assert_close(stats, torch.tensor([[2.0, 1.0], [2.0, 1e-4]]), atol=1e-3, rtol=0)


class DifferencesOnly(nn.Module):
    """A deep path blind to clip means: one convolution over frame differences, pooled."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(n_features, 8, 3, padding=1)
        self.head = nn.Linear(8, 25)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(torch.diff(x, dim=1).transpose(1, 2))).mean(dim=2))


def mean_only_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Clips of white noise whose per-clip mean of feature 0 sets trait 0's level; other traits follow feature 1."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 1, (n, 2))
    x = rng.normal(0, 1, (n, 40, 3))
    x[:, :, :2] += offsets[:, None, :]
    levels = np.zeros((n, 5), dtype=np.int64)
    levels[:, 0] = np.digitize(offsets[:, 0], [-1.0, -0.3, 0.3, 1.0])
    levels[:, 1:] = np.digitize(offsets[:, 1], [-1.0, -0.3, 0.3, 1.0])[:, None]
    return torch.tensor(x, dtype=torch.float32), torch.tensor(levels), levels


def fit_and_score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, test_levels: np.ndarray) -> float:
    mask, mask_test = torch.ones(x.shape[:2], dtype=torch.bool), torch.ones(x_test.shape[:2], dtype=torch.bool)
    if getattr(model, "wide", None) is not None:
        assert torch.count_nonzero(model.wide(x, mask)) == 0
        model.wide.set_statistics_normalization(clip_statistics(x, mask).numpy())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(300):
        loss = nn.functional.cross_entropy(model(x, mask).view(-1, 5), y.view(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float((model(x_test, mask_test).view(-1, 5, 5).argmax(dim=-1).numpy() == test_levels).mean())


def test_statistics_path_starts_at_zero_and_matches_logistic_regression_where_a_mean_blind_path_cannot():
    x, y, levels = mean_only_data(600, seed=1)
    x_test, _, test_levels = mean_only_data(400, seed=2)
    mask, mask_test = torch.ones(x.shape[:2], dtype=torch.bool), torch.ones(x_test.shape[:2], dtype=torch.bool)
    stats, stats_test = clip_statistics(x, mask).numpy(), clip_statistics(x_test, mask_test).numpy()
    baseline = np.mean([LogisticRegression(max_iter=1000).fit(stats, levels[:, t]).score(stats_test, test_levels[:, t]) for t in range(5)])
    torch.manual_seed(0)
    wide_only = nn.Module()
    wide_only.wide = StatisticsPath(3)
    wide_only.forward = lambda x, mask: wide_only.wide(x, mask)
    blind = fit_and_score(DifferencesOnly(3), x, y, x_test, test_levels)
    assert baseline > 0.75 and blind < 0.55, (baseline, blind)
    assert fit_and_score(wide_only, x, y, x_test, test_levels) >= baseline - 0.05


@pytest.mark.parametrize("output", ["softmax", "corn"])
def test_a_fresh_model_starts_as_the_logistic_regression_of_its_output(output):
    """Epoch 0 is the statistics path fitted as logistic regression (CORN's conditional ones for an ordinal model):
    the deep path adds nothing yet, and the start is as accurate as logistic regression on mean-only signal."""
    from models import create_model
    from perfex.core.clips import ClipSet
    from perfex.train.statistics_init import start_from_statistics

    x, _, levels = mean_only_data(900, seed=3)
    n, frames, n_features = x.shape
    clips = ClipSet(ids=np.arange(n), files=np.array([f"{i}.mp4" for i in range(n)], dtype=object),
                    offsets=np.arange(n + 1) * frames, features=x.reshape(-1, n_features).numpy(),
                    times=np.tile(np.arange(frames) / 30, n), feature_names=("a", "b", "c"), levels=levels)
    train, val, test = np.arange(500), np.arange(500, 650), np.arange(650, n)
    torch.manual_seed(0)
    model = create_model("cnn", n_features=n_features, output=output).eval()
    assert start_from_statistics(model, clips, train, val, seed=0)
    lengths = torch.full((len(test),), frames)
    with torch.no_grad():
        assert torch.count_nonzero(model.forward_head(model.forward_features(x[test], lengths))) == 0
        predicted = model.level_probabilities(model(x[test], lengths)).argmax(dim=-1).numpy()
    stats = clip_statistics(x, torch.ones(x.shape[:2], dtype=torch.bool)).numpy()
    baseline = np.mean([LogisticRegression(max_iter=1000).fit(stats[train], levels[train, t]).score(stats[test], levels[test, t])
                        for t in range(5)])
    assert baseline > 0.75
    assert (predicted == levels[test]).mean() >= baseline - 0.03


def test_regularisation_is_chosen_on_folds_of_whole_source_videos():
    """Each candidate is scored on held-out folds whose rows never share a source video with its training rows."""
    from perfex.train.statistics_init import choose_by_folds

    groups = np.repeat(np.arange(6), 4)
    seen = []

    def held_out_loss(candidate, inside, outside):
        assert not set(groups[inside]) & set(groups[outside])
        seen.append(candidate)
        return abs(candidate - 1.0) + len(outside)

    assert choose_by_folds((0.01, 0.1, 1.0, 10.0), held_out_loss, groups) == 1.0
    assert len(seen) == 4 * 3
    assert choose_by_folds((0.01, 0.1, 1.0), held_out_loss, np.zeros(5)) == 0.1  # one video: nothing to fold
