"""Config validation: bad options fail at construction with a message naming the option and the fix."""

from pathlib import Path

import pytest

from models import ModelConfigError, create_model, model_from_config
from models.cnn import CNNConfig
from models.hybrid import HybridConfig

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("name", "options", "message"), [
    ("cnn", {"kernels": (3, 4, 7)}, ("cnn option kernels holds even size(s) [4], which would shift the output length; "
                                     "use odd kernel sizes such as 3, 5, 7, 9")),
    ("cnn", {"kernels": []}, "cnn option kernels must be a non-empty list of positive integers, not []; use e.g. [3, 5, 7, 9]"),
    ("cnn", {"hidden_channels": 0}, "cnn option hidden_channels must be a positive integer, not 0; use e.g. 64"),
    ("cnn", {"max_frames": 12.5}, "cnn option max_frames must be a positive integer, not 12.5; use e.g. 700"),
    ("cnn", {"dropout": 1.0}, "cnn option dropout must be a number in [0, 1), not 1.0; use e.g. 0.5"),
    ("cnn", {"n_outputs": -2}, ("cnn option n_outputs must be a positive integer, not -2; leave it unset for one "
                                   "logit per trait and level")),
    ("cnn", {"pooling": "max"}, "cnn option pooling must be one of mean+std, mean, mean+std+max, not 'max'"),
    ("attn", {"conv_kernels": (8, 5, 3)}, ("attn options conv_channels (4 entries) and conv_kernels (3 entries) must have "
                                           "the same length: one kernel size per convolution")),
    ("attn", {"d_model": 63}, ("attn option d_model must be even and at least 4 (half sines, half cosines), "
                                  "not 63; use e.g. 128")),
    ("attn", {"dropout": -0.1}, "attn option dropout must be a number in [0, 1), not -0.1; use e.g. 0.3"),
    ("attn", {"fps": 0}, "attn option fps must be a positive number of frames per second, not 0; use e.g. 30"),
    ("attn", {"lstm_hidden": True}, "attn option lstm_hidden must be a positive integer, not True; use e.g. 128"),
    ("cnn", {"kernel_taps": "max"}, "cnn option kernel_taps must be one of mean, point, not 'max'"),
    ("attn", {"attention_pooling": "max"}, "attn option attention_pooling must be one of mean+std, mean, not 'max'"),
    ("legacy_cnn", {"n_features": 25}, ("the original architectures are fixed at 17 AUs padded to 700 frames (asked for "
                                        "n_features=25, max_frames=700); drop these options or train a cnn or attn model")),
    ("legacy_attn", {"dropout": 0.1}, "model 'legacy_attn' has no option 'dropout'; its options are max_frames, n_features"),
    ("cnn", {"depth": 3}, ("model 'cnn' has no option 'depth'; its options are branch_channels, dilations, dropout, "
                           "head_hidden, hidden_channels, kernel_features, kernel_taps, kernels, max_frames, n_features, n_levels, n_outputs, n_traits, "
                           "output, pooling, statistics_path, target_levels")),
    ("transformer", {}, "unknown model 'transformer'; choose one of cnn, attn, legacy_cnn, legacy_attn"),
])
def test_bad_options_are_refused_with_what_to_change(name, options, message):
    with pytest.raises(ModelConfigError) as caught:
        create_model(name, **options)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_configs_validate_when_built_directly_and_lists_become_tuples():
    with pytest.raises(ModelConfigError, match="use odd kernel sizes"):
        CNNConfig(kernels=(2,))
    assert HybridConfig(conv_channels=[8, 16], conv_kernels=[4, 3]).conv_kernels == (4, 3)
    model = model_from_config("attn", {"conv_channels": [8, 16], "conv_kernels": [4, 3], "d_model": 8, "lstm_hidden": 8})
    assert model.config.conv_channels == (8, 16) and len(model.convs) == 2


def test_models_do_not_import_the_rest_of_perfex():
    import subprocess
    import sys

    code = "import sys, models; models.create_model('attn'); print(sorted(m for m in sys.modules if m.split('.')[0] == 'perfex'))"
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_cnn_pools_the_spread_and_peak_of_each_channel_over_time_as_well_as_its_mean():
    import torch

    steady = torch.full((1, 60, 17), 1.0)
    bursty = torch.zeros(1, 60, 17)
    bursty[:, ::2] = 2.0  # the same mean per AU, spread over time
    lengths = torch.tensor([60])
    with torch.no_grad():
        for pooling, differ in (("mean+std+max", True), ("mean+std", True), ("mean", False)):
            model = create_model("cnn", pooling=pooling, kernels=(1,), statistics_path=False).eval()
            for conv in (model.first[0], model.second[0]):  # positive weights, kernel 1: the ReLUs pass everything
                torch.nn.init.constant_(conv.weight, 0.1)
                torch.nn.init.zeros_(conv.bias)
            features = [model.forward_features(x, lengths) for x in (steady, bursty)]
            assert features[0].shape[1] == 128 * len(pooling.split("+"))
            assert bool((features[0] - features[1]).abs().max() > 1e-3) == differ


def test_a_stored_config_that_predates_an_option_keeps_the_behaviour_it_was_trained_with():
    from perfex.checkpoint.metadata import with_options_added_later

    assert CNNConfig().pooling == "mean+std+max"
    assert with_options_added_later("cnn", {"kernels": [3], "statistics_path": True}) == {
        "statistics_path": True, "pooling": "mean", "dilations": None, "kernel_features": 0, "kernel_taps": "point",
        "kernels": [3]}
    assert with_options_added_later("cnn", {"pooling": "mean+std", "statistics_path": True}) == {
        "pooling": "mean+std", "statistics_path": True, "dilations": None, "kernel_features": 0, "kernel_taps": "point"}
    assert with_options_added_later("attn", {"d_model": 8}) == {"d_model": 8, "statistics_path": False,
                                                                "attention_pooling": "mean", "kernel_features": 0,
                                                                "kernel_taps": "point"}
    assert HybridConfig().attention_pooling == "mean+std"
    assert with_options_added_later("cnn", None) is None
    stored = {"dropout": 0.5, "pooling": "mean+std", "output": "corn", "statistics_path": True, "dilations": None,
              "kernel_features": 0, "kernel_taps": "mean"}
    assert list(with_options_added_later("cnn", stored)) == list(stored)  # a stored config keeps its key order
