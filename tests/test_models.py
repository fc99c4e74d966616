"""Model contract: shapes, masking invariances, attention on real frames only, normalisation, registry."""

import numpy as np
import pytest
import torch

from models import MODELS, config_to_dict, create_model, model_from_config
from perfex.errors import PerfexError


def batch(lengths, n_features=17, pad=0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths) + pad, n_features, generator=generator)
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("name", ["cnn", "attn"])
def test_output_shape_and_feature_count_from_config(name):
    model = create_model(name, n_features=25).eval()
    x, lengths = batch([40, 17, 3], n_features=25)
    assert model(x, lengths).shape == (3, 25)


@pytest.mark.parametrize("name", ["cnn", "attn"])
def test_padding_and_batch_composition_do_not_change_a_clip(name):
    torch.manual_seed(0)
    model = create_model(name).eval()
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


def test_attention_weights_are_zero_on_padding_and_sum_to_one():
    model = create_model("attn").eval()
    x, lengths = batch([50, 20, 7], pad=10)
    with torch.no_grad():
        _, weights = model(x, lengths, return_attention=True)
    for row, length in enumerate(lengths.tolist()):
        assert torch.all(weights[row, length:] == 0)
        assert weights[row, :length].sum().item() == pytest.approx(1.0, abs=1e-5)
        assert torch.all(weights[row, :length] > 0)


def test_attention_branch_sees_the_content_of_the_clip():
    model = create_model("attn").eval()
    x, lengths = batch([30])
    times = torch.arange(30.0)[None] / 30

    def pooled(frames):
        prepared, mask = model.prepare(frames, lengths)
        return model.attend(prepared, mask, times)[0]

    changed = x.clone()
    changed[0, 10] += 3.0
    with torch.no_grad():
        assert not torch.allclose(pooled(x), pooled(changed))


@pytest.mark.parametrize("name", ["cnn", "attn"])
def test_normalisation_is_stored_and_applied(name):
    model = create_model(name).eval()
    mean, std = np.linspace(0, 1, 17), np.linspace(1, 2, 17)
    model.set_normalization(mean, std)
    state = model.state_dict()
    np.testing.assert_allclose(state["feature_mean"].numpy(), mean, rtol=1e-6)
    x, lengths = batch([20])
    shifted = create_model(name).eval()
    shifted.load_state_dict({**state, "feature_mean": torch.zeros(17), "feature_std": torch.ones(17)})
    with torch.no_grad():
        torch.testing.assert_close(model(x * torch.tensor(std, dtype=torch.float32) + torch.tensor(mean, dtype=torch.float32), lengths),
                                   shifted(x, lengths), atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", ["cnn", "attn"])
def test_a_few_steps_fit_a_planted_signal(name):
    torch.manual_seed(0)
    model = create_model(name, dropout=0.0)
    x, lengths = batch([40] * 16)
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


def test_registry_round_trip_and_errors():
    model = create_model("attn", d_model=64, lstm_hidden=32)
    again = model_from_config("attn", config_to_dict(model))
    assert config_to_dict(again) == config_to_dict(model)
    assert set(MODELS) == {"cnn", "attn", "legacy_cnn", "legacy_attn"}
    with pytest.raises(PerfexError, match="choose one of cnn, attn"):
        create_model("transformer")
    with pytest.raises(PerfexError, match="no option 'depth'"):
        create_model("cnn", depth=3)
