"""Round-one shipped weights (schema-1 metadata, no statistics path) load into today's model code with the same keys
and give the logits pinned when they were released."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from perfex.checkpoint.io import read_config

from models import model_from_config

pytestmark = pytest.mark.unit

WEIGHTS = Path(__file__).resolve().parent / "fixtures" / "round1"  # the weights shipped in round one (schema 1)
# logits[:, ::6] on the clips below, computed with the model code these weights were trained with
PINNED = {
    "cnn": [[0.3098, -1.4011, 11.7305, -6.7731, -18.9718], [1.2703, -0.4833, 11.453, -7.0864, -18.4721],
            [0.018, -0.6256, 10.4251, -6.0141, -17.2808]],
    "attn": [[-43.7039, -3.4239, 6.929, -3.3031, -2.8096], [-28.6017, -2.0884, 5.3624, -2.1, -2.7391],
             [-40.4954, -3.236, 6.2116, -3.0801, -2.6539]],
}
PINNED_ATTENTION = [[0.007304, 0.00626, 0.006152], [0.010935, 0.010056, 0.005834], [0.061388, 0.022293, 0.0]]


def shipped(name: str) -> torch.nn.Module:
    path = WEIGHTS / f"{name}.safetensors"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    meta = read_config(path)  # the release's metadata, migrated to today's schema
    model = model_from_config(meta.model, meta.model_config)
    state = load_file(str(path))
    assert set(state) == set(model.state_dict())
    model.load_state_dict(state, strict=True)
    return model.eval()


def clips() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(3, 200, 17, generator=torch.Generator().manual_seed(123)) * 2, torch.tensor([200, 120, 45])


@pytest.mark.parametrize("name", list(PINNED))
def test_shipped_weights_give_their_pinned_logits(name):
    x, lengths = clips()
    with torch.no_grad():
        logits = shipped(name)(x, lengths)
    torch.testing.assert_close(logits[:, ::6], torch.tensor(PINNED[name]), atol=2e-4, rtol=0)


def test_shipped_attention_weights_are_unchanged():
    x, lengths = clips()
    with torch.no_grad():
        weights = shipped("attn").attention_weights(x, lengths)
    torch.testing.assert_close(weights[:, [0, 44, 119]], torch.tensor(PINNED_ATTENTION), atol=2e-6, rtol=0)
