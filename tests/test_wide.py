"""The statistics path: exact masked statistics, zero start, and a model that matches logistic regression on mean-only signal."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
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
    train, test = np.arange(500), np.arange(650, n)
    torch.manual_seed(0)
    model = create_model("cnn", n_features=n_features, output=output).eval()
    assert start_from_statistics(model, clips, train, seed=0)
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
    from perfex.train.folds import choose_by_folds

    groups = np.repeat(np.arange(6), 4)
    seen = []

    def held_out_loss(candidate, inside, outside):
        assert not set(groups[inside]) & set(groups[outside])
        seen.append(candidate)
        return abs(candidate - 1.0) + len(outside)

    assert choose_by_folds((0.01, 0.1, 1.0, 10.0), held_out_loss, groups) == 1.0
    assert len(seen) == 4 * 3
    assert choose_by_folds((0.01, 0.1, 1.0), held_out_loss, np.zeros(5)) == 0.1  # one video: nothing to fold


def test_a_gain_counts_as_clear_only_beyond_one_standard_error_over_source_videos():
    """The same total gain is clear when many videos share it and not when one video carries it alone."""
    from perfex.train.folds import clearly_lower

    groups = np.repeat(np.arange(20), 5)
    reference = np.ones(100)
    shared = reference - np.random.default_rng(0).normal(0.1, 0.05, 100)
    one_video = reference.copy()
    one_video[:5] -= (reference - shared).sum() / 5
    assert clearly_lower(shared, reference, groups)
    assert not clearly_lower(one_video, reference, groups)
    assert not clearly_lower(reference + 0.1, reference, groups)


def test_the_start_takes_the_timing_score_only_for_a_clear_gain():
    """A regularisation is picked by the lowest held-out loss; the score only where it beats the statistics' best by
    more than one standard error over source videos."""
    from perfex.train.statistics_init import _choose

    groups = np.repeat(np.arange(30), 4)
    noise = np.random.default_rng(1).normal(0, 1, 120)
    noise -= noise.mean()  # the score's total gain is then exactly 120 x gain

    def losses_where_the_score_gains(gain: float):
        def held_out_loss(choice, inside, outside):
            with_score, c = choice
            return 1.0 + abs(np.log10(c)) + noise[outside] * with_score - gain * with_score
        return held_out_loss

    score = object()  # only its presence matters to _choose
    assert _choose((0.01, 0.1, 1.0), score, losses_where_the_score_gains(1.0), groups) == (True, 1.0)
    assert _choose((0.01, 0.1, 1.0), score, losses_where_the_score_gains(0.05), groups) == (False, 1.0)
    assert _choose((0.01, 0.1, 1.0), None, losses_where_the_score_gains(1.0), groups) == (False, 1.0)


def statistics_clips(n: int, seed: int):
    """Clips whose level is the sign of feature 0's mean (a clip statistic), with no timing in them."""
    from perfex.core.clips import ClipSet

    rng = np.random.default_rng(seed)
    shift = rng.normal(0, 1, n)
    x = (rng.normal(0, 1, (n, 100, 3)) + np.stack([shift, np.zeros(n), np.zeros(n)], axis=1)[:, None, :]).astype(np.float32)
    levels = np.tile(np.where(shift > 0, 3, 1)[:, None], (1, 5))
    return ClipSet(ids=np.arange(n), files=np.array([f"{seed}_{i // 3}.mp4" for i in range(n)], dtype=object),
                   offsets=np.arange(n + 1) * 100, features=x.reshape(-1, 3), times=np.tile(np.arange(100) / 30, n),
                   feature_names=("a", "b", "c"), levels=levels)


def test_a_label_in_the_statistics_leaves_the_timing_score_unread():
    """Where a clip statistic carries the label, no target takes the timing score and the kernels are dropped."""
    from models import create_model
    from perfex.train.statistics_init import start_from_statistics

    clips = statistics_clips(120, seed=3)
    torch.manual_seed(0)
    model = create_model("cnn", n_features=3, kernel_features=96).eval()
    model.set_normalization(clips.features.mean(axis=0), clips.features.std(axis=0))
    assert start_from_statistics(model, clips, np.arange(100), seed=0)
    assert model.config.kernel_features == 0 and model.statistics.kernels is None


def test_kernel_features_read_real_frames_only():
    """Padding after a clip, or a longer batch, changes none of its kernel features."""
    from models.wide import KernelFeatures

    kernels = KernelFeatures(3, 12)
    x, mask = torch.randn(4, 90, 3), torch.ones(4, 90, dtype=torch.bool)
    kernels.fit_biases(x, mask)
    padded, padded_mask = torch.cat([x, torch.zeros(4, 30, 3)], dim=1), torch.cat([mask, torch.zeros(4, 30, dtype=torch.bool)], 1)
    torch.testing.assert_close(kernels(padded, padded_mask), kernels(x, mask), atol=1e-6, rtol=0)
    assert kernels(x, mask).shape == (4, 12)


@pytest.mark.parametrize("tap_reads", ["mean", "point"])
def test_kernel_features_match_a_dilated_convolution_of_what_each_tap_reads(tap_reads):
    """Each kernel: its mix of channels, averaged over its spacing's frames ("mean") or not ("point", kernels made
    before the option), through its 9-tap pattern as a dilated convolution, pooled to the share above its bias."""
    from models.wide import KERNEL_DILATIONS, KernelFeatures

    kernels = KernelFeatures(2, 12, tap_reads)
    x, mask = torch.randn(3, 80, 2), torch.ones(3, 80, dtype=torch.bool)
    mask[1, 50:] = False
    x = x * mask[:, :, None]
    kernels.fit_biases(x, mask)
    channels = kernels.channels(x, mask)
    expected = []
    for spacing, dilation in enumerate(KERNEL_DILATIONS):
        read = channels
        if tap_reads == "mean" and dilation > 1:  # frames t - d/2 .. t + d/2 - 1, zero beyond the ends and on padding
            shifted = [torch.roll(F.pad(channels, (dilation, dilation)), -offset, dims=2)[:, :, dilation:-dilation]
                       for offset in range(-(dilation // 2), dilation - dilation // 2)]
            read = torch.stack(shifted).mean(dim=0) * mask[:, None, :]
        mixed = torch.matmul(kernels.mixing[spacing], read)
        response = F.conv1d(mixed, kernels.taps, padding=4 * dilation, dilation=dilation, groups=mixed.shape[1])
        step = torch.sigmoid((response - kernels.bias[spacing][:, None]) / kernels.softness[spacing][:, None])
        expected.append((step * mask[:, None, :]).sum(dim=2) / mask.sum(dim=1, keepdim=True))
    torch.testing.assert_close(kernels(x, mask), torch.cat(expected, dim=1), atol=1e-5, rtol=0)


def test_a_kernels_bias_is_its_quantile_of_the_training_responses():
    """On the clips that set the biases, each kernel fires on about (1 - its quantile) of the frames."""
    from models.wide import KernelFeatures

    kernels = KernelFeatures(3, 24)
    x, mask = torch.randn(16, 200, 3), torch.ones(16, 200, dtype=torch.bool)
    kernels.fit_biases(x, mask)
    np.testing.assert_allclose(kernels(x, mask).mean(dim=0).numpy(), 1 - kernels.quantile.flatten().numpy(), atol=0.03)


def test_kernel_features_pass_gradients_to_the_input():
    """Explanations differentiate the model by its input: the kernels' in-place arithmetic must not break that."""
    from models.wide import CLIPS_PER_CHUNK, KernelFeatures

    kernels = KernelFeatures(3, 24)
    x, mask = torch.randn(CLIPS_PER_CHUNK + 1, 60, 3, requires_grad=True), torch.ones(CLIPS_PER_CHUNK + 1, 60, dtype=torch.bool)
    kernels.fit_biases(x.detach(), mask)
    kernels(x, mask).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(kernels(x, mask), kernels(x.detach().requires_grad_(False), mask))


def pulse_shape_clips(n: int, seed: int):
    """Clips of four pulses on feature 0, each a fast rise and slow fall (level 3) or its mirror image (level 1):
    the same values in another order, so every clip's mean and standard deviation carry nothing of the level."""
    from perfex.core.clips import ClipSet

    rng = np.random.default_rng(seed)
    pulse = np.concatenate([np.linspace(0, 1, 3), np.linspace(1, 0, 25)])
    fast = rng.random(n) < 0.5
    x = rng.normal(0, 0.05, (n, 160, 3)).astype(np.float32)
    for i in range(n):
        for start in rng.choice(np.arange(0, 130, 32), 4, replace=False):
            x[i, start : start + len(pulse), 0] += pulse if fast[i] else pulse[::-1]
    levels = np.tile(np.where(fast, 3, 1)[:, None], (1, 5))
    return ClipSet(ids=np.arange(n), files=np.array([f"{seed}_{i}.mp4" for i in range(n)], dtype=object),
                   offsets=np.arange(n + 1) * 160, features=x.reshape(-1, 3), times=np.tile(np.arange(160) / 30, n),
                   feature_names=("a", "b", "c"), levels=levels)


@pytest.mark.parametrize("kernel_features", [0, 96])
def test_the_start_reads_a_pulse_shape_through_the_kernel_features_only(kernel_features):
    """Where only the order of values within events carries the label, the statistics start is at chance, and the
    start that may read the kernel features learns it (and keeps them)."""
    from models import create_model
    from perfex.train.statistics_init import start_from_statistics

    clips, test = pulse_shape_clips(240, seed=1), pulse_shape_clips(200, seed=2)
    torch.manual_seed(0)
    model = create_model("cnn", n_features=3, kernel_features=kernel_features).eval()
    assert start_from_statistics(model, clips, np.arange(200), seed=0)
    with torch.no_grad():
        predicted = model.level_probabilities(model(torch.from_numpy(test.features.reshape(200, 160, 3)),
                                                    torch.full((200,), 160))).argmax(dim=-1).numpy()
    accuracy = (predicted[:, 0] == test.levels[:, 0]).mean()
    if kernel_features:
        assert accuracy > 0.9 and model.config.kernel_features == kernel_features
    else:
        assert accuracy < 0.65


def test_an_unused_kernel_block_is_removed_and_the_model_rebuilds_from_its_config():
    from models import create_model, model_from_config
    from models.registry import config_to_dict

    model = create_model("attn", n_features=3, kernel_features=12)
    model.drop_kernel_features()
    assert model.config.kernel_features == 0 and model.statistics.linear.in_features == 6
    rebuilt = model_from_config("attn", config_to_dict(model))
    rebuilt.load_state_dict(model.state_dict())
    x, lengths = torch.randn(2, 50, 3), torch.tensor([50, 20])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x, lengths), model.eval()(x, lengths))


def test_kernel_features_export_to_onnx_with_torch_numbers(tmp_path):
    """Torch computes the kernels a few clips at a time, the exported graph the whole batch at once: the same numbers."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from models import create_model
    from models.wide import CLIPS_PER_CHUNK, KERNEL_FEATURES
    from perfex.infer.onnx_export import export_probabilities

    torch.manual_seed(0)
    model = create_model("cnn", n_features=17, output="corn", kernel_features=KERNEL_FEATURES).eval()
    x, lengths = torch.randn(CLIPS_PER_CHUNK + 3, 120, 17), torch.tensor([120, 80, 41, 120, 99, 60, 45][: CLIPS_PER_CHUNK + 3])
    model.statistics.kernels.fit_biases(*model.prepare(x, lengths))
    with torch.no_grad():
        model.statistics.linear.weight.normal_(0, 0.05)
        expected = model.level_probabilities(model(x, lengths)).numpy()
    session = onnxruntime.InferenceSession(str(export_probabilities(model, tmp_path / "m.onnx")))
    names = {i.name for i in session.get_inputs()}
    feed = {k: v.numpy() for k, v in {"x": x, "lengths": lengths, "times": torch.arange(120.0)[None] / 30}.items() if k in names}
    np.testing.assert_allclose(session.run(None, feed)[0], expected, atol=1e-5)


def test_a_folds_timing_scores_never_saw_the_labels_it_is_judged_on(monkeypatch):
    """With the ridge's alpha fixed, changing the labels of one held-out fold changes the scores its cross-validation
    step trains on only by the common standardisation (an affine map)."""
    from perfex.train import timing_score as module
    from perfex.train.folds import group_folds
    from perfex.train.timing_score import RidgeFits, timing_score

    monkeypatch.setattr(module, "KERNEL_RIDGE_ALPHAS", (10.0,))
    rng = np.random.default_rng(0)
    kernels, groups = rng.normal(size=(90, 20)), np.repeat(np.arange(18), 5)
    y, known = kernels[:, 0] + rng.normal(size=90), np.ones(90, dtype=bool)
    score = timing_score(RidgeFits(kernels), y, known, groups)
    assert np.corrcoef(score.crossed, y)[0, 1] > 0.3
    for inside, outside in group_folds(groups):
        changed = y.copy()
        changed[outside] = rng.normal(size=len(outside))
        again = timing_score(RidgeFits(kernels), changed, known, groups)
        assert np.corrcoef(again.for_fold(outside)[inside], score.for_fold(outside)[inside])[0, 1] > 1 - 1e-9
        assert np.corrcoef(again.crossed[inside], score.crossed[inside])[0, 1] < 0.999  # the plain cross-fit saw them


def test_ridge_fits_from_one_svd_match_sklearn():
    from sklearn.linear_model import Ridge

    from perfex.train.timing_score import RidgeFits

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 80)), rng.normal(size=60)
    rows = np.sort(rng.choice(60, 45, replace=False))
    fits = RidgeFits(x)
    for alpha in (0.3, 30.0):
        expected = Ridge(alpha=alpha).fit(x[rows], y[rows])
        weight, intercept = fits.fit(rows, y, alpha)
        np.testing.assert_allclose(weight, expected.coef_, atol=1e-8)
        assert intercept == pytest.approx(expected.intercept_, abs=1e-8)
    assert len(fits.svds) == 1


def test_a_score_output_start_drops_the_kernels_it_never_reads():
    from dataclasses import replace

    from models import create_model
    from perfex.train.statistics_init import start_from_statistics

    clips = pulse_shape_clips(120, seed=3)
    clips = replace(clips, scores=clips.levels / 4.0)
    model = create_model("cnn", n_features=3, output="score", n_outputs=5, kernel_features=96)
    assert start_from_statistics(model, clips, np.arange(100), seed=0)
    assert model.config.kernel_features == 0 and model.statistics.kernels is None
    assert model.statistics.linear.in_features == 6


def test_a_score_output_starts_as_ridge_regression_with_alpha_from_folds_of_source_videos(monkeypatch):
    """Continuous scores: the start predicts held-out scores from mean-only signal, skips missing scores, and
    chooses alpha on folds of the training clips' source videos (never on the validation clips)."""
    from dataclasses import replace

    from models import create_model
    from perfex.core.clips import ClipSet
    from perfex.train import statistics_init

    x, _, levels = mean_only_data(600, seed=5)
    n, frames, n_features = x.shape
    scores = levels / 4.0
    scores[:40, 0] = np.nan
    clips = ClipSet(ids=np.arange(n), files=np.array([f"v{i // 3}.mp4" for i in range(n)], dtype=object),
                    offsets=np.arange(n + 1) * frames, features=x.reshape(-1, n_features).numpy(),
                    times=np.tile(np.arange(frames) / 30, n), feature_names=("a", "b", "c"), levels=levels)
    clips = replace(clips, scores=scores)
    chosen = []
    choose = statistics_init.choose_by_folds
    monkeypatch.setattr(statistics_init, "choose_by_folds",
                        lambda candidates, loss, groups: chosen.append(len(np.unique(groups))) or choose(candidates, loss, groups))
    model = create_model("cnn", n_features=n_features, output="score").eval()
    train, test = np.arange(400), np.arange(400, n)
    assert statistics_init.start_from_statistics(model, clips, train, seed=0)
    assert chosen == [400 // 3 + 1] * 5  # one choice per trait, over the training clips' source videos
    with torch.no_grad():
        predicted = torch.sigmoid(model(x[test], torch.full((len(test),), frames))).numpy()
    assert np.isfinite(predicted).all()
    for t in range(5):
        assert np.corrcoef(predicted[:, t], scores[test, t])[0, 1] > 0.8
