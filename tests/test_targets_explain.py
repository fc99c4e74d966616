"""Explanations, --importance and --per-frame of a checkpoint with other targets than the Big Five (binary + continuous)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import pytest
import torch

from models import create_model
from perfex.checkpoint.io import read_config
from perfex.core.clips import ClipSet
from perfex.core.schema import CONTINUOUS, Target, Targets
from perfex.data.options import DeployConfig, TestConfig, TrainConfig, build_config
from perfex.data.readers import load_clips
from perfex.data.splits import group_keys
from perfex.data.synth import generate_perfex, write_table
from perfex.evaluate.evaluation import evaluate_checkpoint
from perfex.explain import explain_batch, load_explanations, permutation_importance, target_text
from perfex.infer.deploy import deploy
from perfex.train.loop import fit

pytestmark = pytest.mark.e2e

SPEC = "deception:2,stress:continuous"
TARGETS = Targets((Target("deception", 2), Target("stress", CONTINUOUS, center=3.0, scale=10.0)))


def with_custom_labels(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``frame`` with a binary ``deception`` (0/1) and a continuous ``stress`` (around 3, in its own units) per clip."""
    rng = np.random.default_rng(seed)
    ids = frame["ID"].unique()
    frame["deception"] = (frame["extroversion"] >= 0.5).astype(int)
    frame["stress"] = frame["neuroticism"] * 20 - 7 + frame["ID"].map(dict(zip(ids, rng.normal(0, 0.5, len(ids)))))
    return frame


def test_a_continuous_target_attributes_its_value_in_label_units_and_a_binary_one_its_level():
    """Completeness per target: sum of attributions = f(clip) - f(baseline), f = log p(level) for deception and the
    predicted value (standardised output * scale + center) for stress."""
    torch.manual_seed(0)
    model = create_model("cnn", target_levels=(2, 0), hidden_channels=8, branch_channels=8, head_hidden=16, kernels=(3, 5),
                         max_frames=64).eval()
    model.set_normalization(np.full(17, 0.5), np.ones(17))
    x = torch.rand(2, 40, 17) * 3
    lengths, times = torch.tensor([40, 25]), torch.arange(40.0)[None].expand(2, -1) / 30
    x[1, 25:] = 0
    levels = torch.tensor([[1, 0], [0, 0]])
    attributions, _, deltas = explain_batch(model, x, lengths, times, levels, n_steps=64, targets=TARGETS)
    baseline = torch.where(torch.arange(40)[None, :, None] < lengths[:, None, None], model.feature_mean, x)

    def f(inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            outputs = model.level_probabilities(model(inputs, lengths, times))
        return torch.stack([outputs[:, 0].log().gather(1, levels[:, :1]).squeeze(1), outputs[:, 1, 0] * 10 + 3], dim=1)

    expected = f(x) - f(baseline)
    assert attributions.shape == (2, 40, 2, 17) and (attributions[1, 25:] == 0).all()
    np.testing.assert_allclose(attributions.sum(dim=(1, 3)), expected, atol=2e-3)
    assert deltas.abs().max() < 2e-3 and expected[:, 1].abs().min() > 0.01  # scaled to label units: not vacuous
    assert target_text(TARGETS) == ("log-probability of the predicted level of each level target; predicted value (in "
                                    "the label's units) of each continuous target")


def test_permutation_importance_scores_a_continuous_target_by_pearson_r_and_mae(tmp_path):
    """A predictor whose stress reads only AU12's clip mean: shuffling AU12 costs r and MAE, any other AU 0."""
    path = tmp_path / "clips.csv"
    write_table(with_custom_labels(generate_perfex(30, seed=3, min_frames=20, max_frames=60)), path)
    clips = load_clips(path, require_labels=True, targets=TARGETS)
    au12 = clips.feature_names.index("AU12_r")

    def predict(part: ClipSet) -> np.ndarray:
        means = np.add.reduceat(part.features[:, au12], part.offsets[:-1]) / part.lengths
        return np.column_stack([np.zeros(len(part)), means * 10])

    clips.scores[:, 1] = predict(clips)[:, 1] + np.random.default_rng(0).normal(0, 0.1, len(clips))
    table = permutation_importance(predict, clips, group_keys(clips), n_boot=50)
    assert list(table.columns[:2]) == ["target", "feature"] and list(table["target"].unique()) == ["deception", "stress"]
    stress, deception = table[table["target"] == "stress"], table[table["target"] == "deception"]
    assert stress[["accuracy_drop", "qwk_drop"]].isna().all().all()
    assert deception[["pearson_r_drop", "mae_rise"]].isna().all().all()
    top = stress[stress["rank"] == 1].iloc[0]
    assert top["feature"] == "AU12_r" and top["pearson_r_drop"] > 0.3 and top["mae_rise"] > 0.1
    np.testing.assert_allclose(stress.loc[stress["feature"] != "AU12_r", ["pearson_r_drop", "mae_rise"]], 0, atol=1e-12)
    assert (deception["accuracy_drop"] == 0).all() and sorted(deception["rank"]) == list(range(1, 18))


def test_train_test_importance_and_deploy_explain_per_frame_follow_the_targets(tmp_path):
    data = tmp_path / "custom.csv"
    write_table(with_custom_labels(generate_perfex(48, seed=7, spread=3.0, min_frames=40, max_frames=70)), data)
    fit(build_config(TrainConfig, "cnn", data=[str(data)], out=str(tmp_path / "run"), targets=SPEC, epochs=1,
                     batch_size=16, device="cpu", progress=False, seed=0))
    weights = tmp_path / "run" / "best.safetensors"
    targets = read_config(weights).target_set
    assert targets.spec() == SPEC and targets[1].scale > 1  # stress standardised with its own spread

    results = evaluate_checkpoint(build_config(TestConfig, "cnn", weights=str(weights), out=str(tmp_path / "t"), n_boot=20,
                                               progress=False, importance=True))
    report = tmp_path / "t"
    markdown = (report / "importance.md").read_text()
    assert markdown.strip() in results["markdown"] and "| target | rank |" in markdown
    assert "QWK drop / Pearson r drop" in markdown and "| deception | 1 |" in markdown and "| stress | 1 |" in markdown
    permutation = pd.read_csv(report / "importance_permutation.csv")
    assert {"qwk_drop", "accuracy_drop", "pearson_r_drop", "mae_rise"} <= set(permutation.columns)
    assert set(pd.read_csv(report / "importance_attribution.csv")["target"]) == {"deception", "stress"}
    assert (report / "importance.png").stat().st_size > 1000

    out, rows = tmp_path / "pred.csv", tmp_path / "rows.csv"
    summary = deploy(build_config(DeployConfig, "cnn", weights=str(weights), data=[str(data)], out=str(out),
                                  per_frame=str(rows), explain=str(tmp_path / "ex"), explain_plots=1, progress=False))
    table = pd.read_csv(out).set_index("ID")
    frames = pd.read_csv(rows)
    assert {"deception", "stress"} <= set(frames.columns)
    np.testing.assert_allclose(frames[["deception", "stress"]].to_numpy(),
                               table.loc[frames["ID"], ["deception", "stress"]].to_numpy(), rtol=1e-5)
    stored = load_explanations(summary["explanations"]).arrays
    assert list(stored["traits"]) == ["deception", "stress"] and list(stored["target_levels"]) == [2, 0]
    assert stored["attributions"].shape[1:] == (2, 17) and "continuous" in str(stored["target"])
    explained = table.loc[stored["clip_id"].astype(int)]
    np.testing.assert_array_equal(stored["levels"], np.column_stack([explained["deception"], np.zeros(len(explained))]))
    assert len(list((tmp_path / "ex").glob("clip_*.png"))) == 1
