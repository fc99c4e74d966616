"""Targets other than the Big Five: the spec, the model's output layout, losses, metrics and baselines by kind."""

import numpy as np
import pytest
import torch

from models import create_model
from models.registry import families
from perfex.core.errors import PerfexError
from perfex.core.metrics import baseline_predictions, trait_metrics
from perfex.core.schema import BIG_FIVE, CONTINUOUS, Target, Targets, parse_targets
from perfex.train.losses import targets_loss

pytestmark = pytest.mark.unit

KINDS = {"binary": Target("deception", 2), "levels": Target("stress", 3),
         "continuous": Target("score", CONTINUOUS, center=40.0, scale=8.0)}


def test_spec_reads_every_kind_and_defaults_to_the_big_five():
    targets = parse_targets("deception:2, stress:7 ,extroversion,  interview:continuous")
    assert [(t.name, t.levels, t.kind) for t in targets] == [
        ("deception", 2, "binary"), ("stress", 7, "ordinal"), ("extroversion", 5, "ordinal"),
        ("interview", CONTINUOUS, "continuous")]
    assert targets.spec() == "deception:2,stress:7,extroversion,interview:continuous"
    assert parse_targets(None) is BIG_FIVE and parse_targets(" ") is BIG_FIVE and BIG_FIVE.is_big_five
    assert Targets.from_list(targets.as_list()) == targets and Targets.from_list(None) == BIG_FIVE


@pytest.mark.parametrize("spec, says", [("deception:1", "K >= 2"), ("a:b", "level count"), ("x,x", "twice"),
                                        ("9lives", "not a label column name"), ("ok,", "not a label column name")])
def test_a_bad_spec_is_one_line_saying_what_to_write(spec, says):
    with pytest.raises(PerfexError, match=says) as caught:
        parse_targets(spec)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("family", families())
def test_outputs_hold_each_targets_probabilities_or_value_and_gates_touch_only_their_target(family):
    torch.manual_seed(0)
    model = create_model(family, target_levels=(2, 0, 5), max_frames=64).eval()
    assert (model.n_logits, model.config.n_traits, model.config.n_levels) == (8, 3, 5)
    x, lengths = torch.randn(4, 40, 17), torch.tensor([40, 33, 20, 9])
    with torch.no_grad():
        logits = model(x, lengths)
        outputs = model.level_probabilities(logits)
    assert outputs.shape == (4, 3, 5)
    torch.testing.assert_close(outputs[:, 0, :2].sum(dim=1), torch.ones(4))
    assert (outputs[:, 0, 2:] == 0).all() and (outputs[:, 1, 1:] == 0).all()
    torch.testing.assert_close(outputs[:, 1, 0], logits[:, 2])  # a continuous target's value is its logit
    torch.testing.assert_close(outputs[:, 2].sum(dim=1), torch.ones(4))
    model.set_temperatures([2.0, 3.0, 1.0])
    with torch.no_grad():
        scaled = model.level_probabilities(logits)
    torch.testing.assert_close(scaled[:, 1, 0], logits[:, 2])  # temperatures never rescale a value
    model.set_temperatures([1.0, 1.0, 1.0])
    with torch.no_grad():
        deep = model.forward_head(model.forward_features(x, lengths))
        statistics = model.statistics_logits(x, lengths)
        model.set_deep_gates([1.0, 0.0, 1.0])
        gated = model(x, lengths)
    torch.testing.assert_close(gated[:, 2], torch.as_tensor(statistics)[:, 2])
    torch.testing.assert_close(gated[:, :2], deep[:, :2] + statistics[:, :2])


def test_a_score_output_takes_no_target_levels():
    from models.errors import ModelConfigError

    with pytest.raises(ModelConfigError, match="takes no target_levels"):
        create_model("cnn", target_levels=(2,), output="score")
    with pytest.raises(ModelConfigError, match="level count >= 2 or 0"):
        create_model("cnn", target_levels=(1, 3))


def _planted(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features [n, 4] and one target's labels (levels, scores) that depend on the first feature only."""
    x = rng.normal(size=(n, 4)).astype(np.float32)
    signal = x[:, 0] + 0.3 * rng.normal(size=n)
    if kind == "continuous":
        return x, np.zeros((n, 1), dtype=np.int64), (40 + 8 * signal)[:, None]
    target = KINDS[kind]
    levels = np.digitize(signal, np.quantile(signal, np.linspace(0, 1, target.levels + 1)[1:-1]))[:, None]
    return x, levels, levels / (target.levels - 1)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("loss", ["ce", "ordinal"])
def test_targets_loss_teaches_a_linear_model_the_planted_signal_of_each_kind(kind, loss):
    rng = np.random.default_rng(1)
    targets = Targets((KINDS[kind],))
    x, levels, scores = _planted(kind, 600, rng)
    net = torch.nn.Linear(4, KINDS[kind].width)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(150):
        optimiser.zero_grad()
        targets_loss(net(torch.from_numpy(x)), torch.from_numpy(levels), torch.from_numpy(scores), targets, loss).backward()
        optimiser.step()
    x_test, levels_test, scores_test = _planted(kind, 400, rng)
    from models.outputs import decode_targets

    with torch.no_grad():
        outputs = decode_targets(net(torch.from_numpy(x_test)), targets.level_counts, "corn" if loss == "ordinal" else "softmax")
    metrics = trait_metrics(levels_test, outputs.numpy(), scores_test, targets=targets)["per_trait"][KINDS[kind].name]
    headline = {"binary": "roc_auc", "levels": "qwk", "continuous": "pearson_r"}[kind]
    assert metrics[headline] > 0.8
    if kind == "continuous":  # the value comes back in the label's own units
        assert abs(targets.scores(outputs.numpy())[:, 0].mean() - scores_test.mean()) < 1.5


@pytest.mark.parametrize("kind", list(KINDS))
def test_metrics_and_baselines_follow_the_kind(kind):
    rng = np.random.default_rng(2)
    targets = Targets((KINDS[kind], Target("extroversion")))
    x, levels, scores = _planted(kind, 300, rng)
    extra = rng.integers(0, 5, size=(300, 1))
    levels, scores = np.hstack([levels, extra]), np.hstack([scores, extra / 4])
    predictions = baseline_predictions(levels[:200], scores[:200], x[:200], x[200:], targets=targets)
    name = KINDS[kind].name
    for baseline, (outputs, values) in predictions.items():
        metrics = trait_metrics(levels[200:], outputs, scores[200:], values, targets=targets)["per_trait"]
        applies = baseline in {"binary": ("majority", "logreg_au_stats"), "levels": tuple(predictions),
                               "continuous": ("train_mean", "ridge_au_stats")}[kind]
        assert np.isfinite(metrics[name][next(iter(metrics[name]))]) == applies, baseline
        assert np.isfinite(metrics["extroversion"]["accuracy"])
    expected = {"binary": {"accuracy", "roc_auc", "f1_macro", "brier"}, "levels": {"accuracy", "qwk", "mae"},
                "continuous": {"mae", "pearson_r", "ccc", "r2"}}[kind]
    assert expected <= set(metrics[name])
    learned = trait_metrics(levels[200:], predictions["logreg_au_stats" if kind != "continuous" else "ridge_au_stats"][0],
                            scores[200:], targets=targets)["per_trait"][name]
    assert learned[{"binary": "roc_auc", "levels": "qwk", "continuous": "pearson_r"}[kind]] > 0.8
