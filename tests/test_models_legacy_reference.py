"""The original hybrid, re-derived independently from its description, against models.legacy on seeded random weights."""

import math

import pytest
import torch
import torch.nn.functional as F

from models.legacy import build_legacy_model, legacy_state_dict_shapes, original_time_embedding

pytestmark = pytest.mark.unit

# cos / sin of t * exp(-ln(10000) * i / 256) for t = 0, 1, 100/30, 2330 (rows) and i = 0, 1, 100, 255 (columns),
# from the formula in float64; float32 angles at t = 2330 are off by up to ~1.2e-4, far less than any other variant
COS = [[1.0, 1.0, 1.0, 1.0], [0.5403023, 0.569695, 0.9996251, 1.0], [-0.981674, -0.9972672, 0.9958368, 0.9999999],
       [0.4873456, -0.1474299, 0.5625542, 0.9709718]]
SIN = [[0.0, 0.0, 0.0, 0.0], [0.841471, 0.8218562, 0.0273808, 0.0001037], [-0.190568, -0.0738787, 0.0911539, 0.0003455],
       [-0.8732092, -0.9890725, 0.8267604, 0.2391938]]


def test_original_time_embedding_is_pinned():
    embedding = original_time_embedding(torch.tensor([0.0, 1.0, 100 / 30, 2330.0]))
    assert embedding.shape == (4, 512) and embedding.dtype == torch.float32
    columns = [0, 1, 100, 255]
    for values, offset in ((COS, 0), (SIN, 256)):
        got = embedding[:, [offset + c for c in columns]]
        torch.testing.assert_close(got[:3], torch.tensor(values[:3]), atol=1e-6, rtol=0)
        torch.testing.assert_close(got[3], torch.tensor(values[3]), atol=2e-4, rtol=0)


def sinusoid(t: torch.Tensor, cos_first: bool = True, divisor: int = 256) -> torch.Tensor:
    """The description's embedding in float32 (the original's precision); the keywords give the variant we used to assume."""
    angles = t.float()[:, None] * torch.exp(-math.log(10000.0) * torch.arange(256, dtype=torch.float32) / divisor)
    parts = [angles.cos(), angles.sin()] if cos_first else [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1)


def reference_probabilities(s: dict, clip: torch.Tensor, **variant) -> torch.Tensor:
    """One clip as the original ran it: zero-padded to 700 frames, batch of one, LSTM fed [1, 700, 512] sequence-first."""
    x = torch.zeros(700, 17)
    x[: len(clip)] = clip
    times = sinusoid(torch.arange(700) * 100 / 30, **variant)
    hidden = F.silu(F.linear(times, s["time_embed.0.weight"], s["time_embed.0.bias"]))
    time_part = F.linear(hidden, s["time_embed.2.weight"], s["time_embed.2.bias"])
    embedded = F.linear(x, s["au_emb.weight"], s["au_emb.bias"]) + time_part
    lstm = torch.nn.LSTM(512, 256)
    prefix = "attention_lstm.lstm."
    lstm.load_state_dict({k.removeprefix(prefix): v for k, v in s.items() if k.startswith(prefix)})
    out, _ = lstm(embedded[None])  # sequence length 1, "batch" of 700 frames
    scalar = F.linear(out[0, 699], s["attention_lstm.output_layer.weight"], s["attention_lstm.output_layer.bias"])
    y = x.T[None]
    for index, padding in zip(range(1, 5), (4, 2, 1, 1), strict=True):
        y = torch.relu(F.conv1d(y, s[f"conv1d_y{index}.weight"], s[f"conv1d_y{index}.bias"], padding=padding))
        se = f"squeeze_excite{index}"
        gate = torch.relu(F.linear(y.mean(dim=2), s[f"{se}.fc1.weight"], s[f"{se}.fc1.bias"]))
        y = y * torch.sigmoid(F.linear(gate, s[f"{se}.fc2.weight"], s[f"{se}.fc2.bias"]))[:, :, None]
    h = torch.cat([scalar.expand(256), y.mean(dim=2)[0]])
    for layer in range(3):
        h = F.linear(h, s[f"linear_layer_stack.{layer}.weight"], s[f"linear_layer_stack.{layer}.bias"])
    return h.view(5, 5).softmax(dim=1)


@pytest.mark.parametrize("seed", [0, 1])
def test_original_hybrid_matches_its_forward_pass_within_1e5(seed):
    generator = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(shape, generator=generator) * 0.1 for k, shape in legacy_state_dict_shapes("legacy_attn").items()}
    lengths = [40, 137, 301, 460]
    clips = torch.rand(len(lengths), max(lengths), 17, generator=generator) * 2
    model = build_legacy_model(state)
    with torch.no_grad():
        got = model(clips, torch.tensor(lengths)).view(-1, 5, 5).softmax(dim=2)
        for row, length in enumerate(lengths):
            expected = reference_probabilities(state, clips[row, :length])
            torch.testing.assert_close(got[row], expected, atol=1e-5, rtol=0)
        old_variant = reference_probabilities(state, clips[0, :40], cos_first=False, divisor=255)
    assert (old_variant - got[0]).abs().max() > 1e-4  # the check tells the embedding variants apart
