"""Model contract, checked for every registered model: shapes, masking invariances, head/encoder split, freezing, reset_head."""

import numpy as np
import pytest
import torch

from models import MODELS, TraitModel, config_to_dict, create_model, list_models, model_from_config
from models.common import sinusoidal_embedding

pytestmark = pytest.mark.unit

ALL = list_models()
OURS = [name for name in ALL if MODELS[name].model_class.fixed_length is None]


def batch(lengths, n_features=17, pad=0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths) + pad, n_features, generator=generator).abs()
    return x, torch.tensor(lengths)


def fresh(name, seed=0, **config):
    torch.manual_seed(seed)
    return create_model(name, **config).eval()


@pytest.mark.parametrize("name", ALL)
def test_contract_attributes(name):
    model = fresh(name)
    assert isinstance(model, TraitModel) and model.name == name
    assert model.max_frames > 0 and model.fixed_length in (None, model.max_frames)
    assert model.feature_mean.shape == model.feature_std.shape == (model.config.n_features,)
    assert isinstance(model.head[-1], torch.nn.Linear) and model.n_outputs == 25


@pytest.mark.parametrize("name", ALL)
def test_features_then_head_is_forward(name):
    model = fresh(name)
    x, lengths = batch([40, 17, 3])
    with torch.no_grad():
        pooled = model.forward_features(x, lengths)
        logits = model(x, lengths)
    assert pooled.ndim == 2 and pooled.shape[0] == 3 and logits.shape == (3, 25)
    torch.testing.assert_close(model.forward_head(pooled), logits, atol=0, rtol=0)


@pytest.mark.parametrize("name", OURS)
def test_feature_count_comes_from_the_config(name):
    model = fresh(name, n_features=25)
    x, lengths = batch([40, 17, 3], n_features=25)
    assert model(x, lengths).shape == (3, 25)


@pytest.mark.parametrize("name", ALL)
def test_padding_and_batch_composition_do_not_change_a_clip(name):
    model = fresh(name)
    x, lengths = batch([60, 33, 12])
    with torch.no_grad():
        reference = model(x, lengths)
        garbage = torch.cat([x, 1e3 * torch.randn(3, 40, 17)], dim=1)
        padded = model(garbage, lengths)
        alone = model(x[1:2, :33], lengths[1:2])
        regrouped = model(torch.stack([x[2], x[0]]), lengths[[2, 0]])
    torch.testing.assert_close(padded, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(alone[0], reference[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(regrouped, reference[[2, 0]], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ALL)
def test_head_and_encoder_parameters_partition_the_model(name):
    model = fresh(name)
    head, encoder = model.head_parameters(), model.encoder_parameters()
    assert head and encoder
    ids = [id(p) for p in head + encoder]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    statistics = list(model.statistics.parameters()) if model.statistics is not None else []
    assert {id(p) for p in head} == {id(p) for p in [*model.head.parameters(), *statistics]}


@pytest.mark.parametrize("name", ALL)
def test_freezing_the_encoder_trains_only_the_head(name):
    model = fresh(name)
    model.train()
    trainable = model.freeze_encoder()
    encoder_before = [p.detach().clone() for p in model.encoder_parameters()]
    head_before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x, lengths = batch([30, 20])
    model(x, lengths).square().mean().backward()
    optimizer.step()
    assert all(torch.equal(a, p) for a, p in zip(encoder_before, model.encoder_parameters(), strict=True))
    assert all(p.grad is None for p in model.encoder_parameters())
    assert any(not torch.equal(a, p) for a, p in zip(head_before, trainable, strict=True))


@pytest.mark.parametrize("name", OURS)
def test_reset_head_changes_the_outputs_and_survives_a_config_round_trip(name):
    model = fresh(name)
    encoder_before = [p.detach().clone() for p in model.encoder_parameters()]
    model.reset_head(20)
    x, lengths = batch([30, 20])
    assert model(x, lengths).shape == (2, 20) and model.n_outputs == 20
    assert all(torch.equal(a, p) for a, p in zip(encoder_before, model.encoder_parameters(), strict=True))
    again = model_from_config(name, config_to_dict(model))
    again.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x, lengths), model(x, lengths), atol=0, rtol=0)


@pytest.mark.parametrize("name", [n for n in ALL if n not in OURS])
def test_original_architectures_keep_their_25_logit_head(name):
    model = fresh(name)
    old = model.head[-1].weight.detach().clone()
    model.reset_head(25)
    assert model.n_outputs == 25 and not torch.equal(old, model.head[-1].weight)
    with pytest.raises(ValueError, match="fixed 25-logit head; reset it to 25 outputs or train a cnn or attn model for 20"):
        model.reset_head(20)
    with pytest.raises(ValueError, match="takes raw inputs and has no normalisation to set"):
        model.set_normalization(np.zeros(17), np.ones(17))
    assert "feature_mean" not in model.state_dict()


def test_attention_weights_are_zero_on_padding_and_sum_to_one():
    model = fresh("attn")
    x, lengths = batch([50, 20, 7], pad=10)
    with torch.no_grad():
        logits, weights = model(x, lengths, return_attention=True)
        torch.testing.assert_close(model.attention_weights(x, lengths), weights, atol=0, rtol=0)
        torch.testing.assert_close(model(x, lengths), logits, atol=0, rtol=0)
    assert weights.shape == (3, 60)
    for row, length in enumerate(lengths.tolist()):
        assert torch.all(weights[row, length:] == 0)
        assert weights[row, :length].sum().item() == pytest.approx(1.0, abs=1e-5)
        assert torch.all(weights[row, :length] > 0)


@pytest.mark.parametrize("name", ALL)
def test_shared_times_and_the_times_of_padded_frames_change_no_clip(name):
    """One row of times [1, T] (the hybrid embeds it once per batch) gives the per-clip [B, T] result, whatever the
    padded frames' times are."""
    model = fresh(name)
    x, lengths = batch([50, 20, 7])
    shared = torch.arange(50.0)[None] * 0.04
    real = torch.arange(50)[None] < lengths[:, None]
    per_clip = shared.expand(3, -1) * real
    with torch.no_grad():
        reference = model(x, lengths, per_clip)
        torch.testing.assert_close(model(x, lengths, shared), reference, atol=0, rtol=0)
        torch.testing.assert_close(model(x, lengths, per_clip + 7.0 * ~real), reference, atol=0, rtol=0)
        if name == "attn":
            assert not torch.allclose(model(x, lengths, shared * 2), reference)


def test_attention_branch_sees_the_content_of_the_clip():
    model = fresh("attn")
    x, lengths = batch([30])
    times = torch.arange(30.0)[None] / 30

    def pooled(frames):
        prepared, mask = model.prepare(frames, lengths)
        return model.attend(prepared, mask, times)[0]

    changed = x.clone()
    changed[0, 10] += 3.0
    with torch.no_grad():
        assert not torch.allclose(pooled(x), pooled(changed))


@pytest.mark.parametrize("pooling", ["mean+std", "mean"])
def test_attentive_statistics_pooling_is_the_attention_weighted_mean_and_std_of_the_lstm_states(pooling):
    model = fresh("attn", attention_pooling=pooling)
    x, lengths = batch([30, 12], pad=5)
    times = torch.arange(35.0)[None] / 30
    with torch.no_grad():
        prepared, mask = model.prepare(x, lengths)
        pooled, weights = model.attend(prepared, mask, times)
        h = model.au_embedding(prepared) + model.time_embedding(sinusoidal_embedding(times, model.config.d_model))
        states = model.lstm(h)[0]
    assert pooled.shape == (2, model.attended_width()) == (2, 128 * (2 if pooling == "mean+std" else 1))
    for row, length in enumerate(lengths.tolist()):
        w, s = weights[row, :length, None], states[row, :length]
        mean = (w * s).sum(dim=0)
        torch.testing.assert_close(pooled[row, :128], mean, atol=1e-5, rtol=0)
        if pooling == "mean+std":
            std = ((w * (s - mean) ** 2).sum(dim=0)).clamp(min=1e-6).sqrt()
            torch.testing.assert_close(pooled[row, 128:], std, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", OURS)
def test_normalisation_is_stored_and_applied(name):
    model = fresh(name)
    mean, std = np.linspace(0, 1, 17), np.linspace(1, 2, 17)
    model.set_normalization(mean, std)
    state = model.state_dict()
    np.testing.assert_allclose(state["feature_mean"].numpy(), mean, rtol=1e-6)
    x, lengths = batch([20])
    shifted = create_model(name).eval()
    shifted.load_state_dict({**state, "feature_mean": torch.zeros(17), "feature_std": torch.ones(17)})
    with torch.no_grad():
        raw = x * torch.tensor(std, dtype=torch.float32) + torch.tensor(mean, dtype=torch.float32)
        torch.testing.assert_close(model(raw, lengths), shifted(x, lengths), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", OURS)
def test_a_few_steps_fit_a_planted_signal(name):
    model = fresh(name, dropout=0.0).train()
    x, lengths = batch([40] * 16)
    x = x * torch.randn(16, 1, 17, generator=torch.Generator().manual_seed(1)).sign()
    target = (x[:, :, 0].mean(dim=1) > 0).long()  # trait 0 level 0 or 1 from AU01's mean
    levels = torch.stack([target] + [torch.zeros_like(target)] * 4, dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        logits = model(x, lengths).view(-1, 5, 5)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), levels.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ALL)
def test_registry_round_trip(name):
    model = create_model(name)
    again = model_from_config(name, config_to_dict(model))
    assert config_to_dict(again) == config_to_dict(model) and type(again) is type(model)
    assert set(again.state_dict()) == set(model.state_dict())
