"""One registry entry per model: every list of models, script name, title and option added later derives from it."""

import subprocess
import sys

import pytest

from helpers import REPO
from models.registry import MODELS, ModelEntry, families, family_of, register, script_prefix
from perfex.checkpoint import metadata
from perfex.cli import command
from perfex.cli import scripts as cli
from perfex.data import options

pytestmark = pytest.mark.unit


def test_every_model_view_derives_from_the_registry():
    assert families() == options.FAMILIES == command.MODELS == ("cnn", "attn")
    assert cli.SCRIPT_PREFIX == command.SCRIPT_PREFIX == {"cnn": "1dcnn", "attn": "attn"}
    assert cli.MODEL_TITLES == {name: MODELS[name].title for name in families()}
    assert [family_of(name) for name in MODELS] == ["cnn", "attn", "cnn", "attn"]
    assert script_prefix("legacy_attn") == "attn" and script_prefix("unknown") == "unknown"


def test_options_added_later_keep_every_earlier_value():
    assert metadata.OPTIONS_ADDED_LATER == {"cnn": {"statistics_path": False, "pooling": "mean", "dilations": None,
                                                    "kernel_features": 0, "kernel_taps": "point"},
                                            "attn": {"statistics_path": False, "attention_pooling": "mean",
                                                     "kernel_features": 0, "kernel_taps": "point"}}
    assert metadata.with_options_added_later("cnn", {"pooling": "mean+std"}) == {
        "pooling": "mean+std", "statistics_path": False, "dilations": None, "kernel_features": 0, "kernel_taps": "point"}


@pytest.mark.parametrize("family", families())
def test_every_family_has_its_four_scripts(family):
    for name in ("train", "retrain", "test", "deploy"):
        assert (REPO / f"{script_prefix(family)}_{name}.py").is_file()


def test_every_entry_names_importable_classes_with_its_options_added_later():
    for entry in MODELS.values():
        assert entry.model_class.name == entry.name
        names = {f for f in entry.config_class.__dataclass_fields__}
        assert set(entry.options_added_later) <= names, entry.name


def test_a_model_is_registered_once():
    with pytest.raises(ValueError, match="model 'cnn' is registered twice"):
        register(ModelEntry("cnn", "models.cnn:MultiScaleCNN", "models.cnn:CNNConfig", title="again"))


def test_reading_the_registry_imports_no_torch():
    code = "import sys, models, perfex.checkpoint.metadata, perfex.cli.command; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
