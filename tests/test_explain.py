"""Explanations: attention, integrated-gradients completeness and batch invariance, storage, plots, AU importance."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import torch
from sklearn.metrics import cohen_kappa_score

from models import create_model
from perfex.data.batches import collate
from perfex.core.clips import ClipSet
from perfex.infer.clip_rows import trait_levels
from perfex.infer.deploy import ChunkPredictor
from perfex.infer.torch_engine import torch_engine
from perfex.data.options import DeployConfig, build_config
from perfex.core.errors import PerfexError
from perfex.evaluate.importance import model_importance, write_importance
from perfex.explain import (ExplanationWriter, attribution_importance, explain_batch, explain_clips, load_explanations,
                            permutation_importance)
from perfex.explain.importance import _scores
from perfex.data.readers import load_clips
from perfex.infer.predict import predict_probs
from perfex.core.schema import TRAITS
from perfex.data.splits import group_keys
from perfex.data.synth import generate_perfex

pytestmark = pytest.mark.e2e

# Completeness: |sum of attributions - (f(x) - f(baseline))| below this, f = log-probability, with 64 steps.
COMPLETENESS_TOLERANCE = 1e-3
TINY = {"attn": dict(d_model=16, lstm_hidden=16, attention_hidden=8, conv_channels=(8, 8, 8, 8), head_hidden=16,
                     se_reduction=4, max_frames=64),
        "cnn": dict(hidden_channels=8, branch_channels=8, head_hidden=16, kernels=(3, 5), max_frames=64)}


def tiny_model(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model(name, **TINY[name])
    generator = np.random.default_rng(seed)
    model.set_normalization(generator.uniform(0, 1, 17), generator.uniform(0.5, 1.5, 17))
    return model.eval()


def padded_batch(lengths: list[int], width: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(len(lengths), width, 17, generator=generator) * 3
    mask = torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]
    times = torch.arange(width, dtype=torch.float32)[None].expand(len(lengths), -1) / 30 * mask
    return x * mask[:, :, None], torch.tensor(lengths), times


def target_output(model, x, lengths, times, levels) -> torch.Tensor:
    """[B, 5] log-probability of each trait's target level."""
    with torch.no_grad():
        logp = model(x, lengths, times).view(-1, 5, 5).log_softmax(-1)
    return logp.gather(2, levels[:, :, None]).squeeze(2)


def test_attention_sums_to_one_on_real_frames_and_is_exactly_zero_on_padding():
    model = tiny_model("attn")
    x, lengths, times = padded_batch([50, 31, 7], 56)
    _, attention, _ = explain_batch(model, x, lengths, times, torch.zeros(3, 5, dtype=torch.long), n_steps=4)
    assert attention.shape == (3, 56)
    assert torch.allclose(attention.sum(dim=1), torch.ones(3), atol=1e-6)
    for row, n in enumerate(lengths.tolist()):
        assert (attention[row, n:] == 0).all() and (attention[row, :n] > 0).all()


def test_cnn_has_no_attention():
    x, lengths, times = padded_batch([20], 20)
    assert explain_batch(tiny_model("cnn"), x, lengths, times, torch.zeros(1, 5, dtype=torch.long), n_steps=4)[1] is None


@pytest.mark.parametrize("name", ["attn", "cnn"])
def test_integrated_gradients_are_complete(name):
    """Attributions of each trait sum to f(clip) - f(baseline), f = log p(target level), baseline = training mean."""
    model = tiny_model(name)
    x, lengths, times = padded_batch([40, 25], 40)
    levels = torch.tensor([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    attributions, _, deltas = explain_batch(model, x, lengths, times, levels, n_steps=64)
    baseline = torch.where(torch.arange(40)[None, :, None] < lengths[:, None, None], model.feature_mean, x)
    expected = target_output(model, x, lengths, times, levels) - target_output(model, baseline, lengths, times, levels)
    assert attributions.shape == (2, 40, 5, 17)
    assert (attributions[1, 25:] == 0).all()
    assert (attributions.sum(dim=(1, 3)) - expected).abs().max() < COMPLETENESS_TOLERANCE
    assert deltas.abs().max() < COMPLETENESS_TOLERANCE
    assert expected.abs().max() > 0.01  # the check is not vacuous


@pytest.mark.parametrize("name", ["attn", "cnn"])
def test_a_clip_alone_and_in_a_batch_gets_the_same_explanation(name):
    model = tiny_model(name)
    x, lengths, times = padded_batch([33, 48, 12], 60)
    levels = torch.tensor([[1, 2, 3, 4, 0]] * 3)
    batched, batched_attention, _ = explain_batch(model, x, lengths, times, levels, n_steps=16)
    alone, alone_attention, _ = explain_batch(model, x[:1, :33], lengths[:1], times[:1, :33], levels[:1], n_steps=16)
    assert torch.allclose(alone[0], batched[0, :33], atol=1e-5, rtol=1e-4)
    if name == "attn":
        assert torch.allclose(alone_attention[0], batched_attention[0, :33], atol=1e-6)


@pytest.fixture(scope="module")
def small_clips(tmp_path_factory) -> ClipSet:
    path = tmp_path_factory.mktemp("explain") / "clips.csv"
    generate_perfex(12, seed=3, spread=2.5, min_frames=20, max_frames=150).to_csv(path, index=False)
    return load_clips(path, require_labels=True)


def test_long_clips_are_explained_window_by_window(small_clips):
    model = tiny_model("attn")
    levels = np.full((len(small_clips), 5), 2)
    explained = explain_clips(model, small_clips, np.arange(len(small_clips)), levels, batch_size=4, n_steps=8)
    assert small_clips.lengths.max() > 64  # some clips need several windows
    for k, n in enumerate(small_clips.lengths):
        assert explained.attributions[k].shape == (n, 5, 17)
        assert explained.attention[k].shape == (n,)
        assert explained.attention[k].sum() == pytest.approx(1.0, abs=1e-5)


def test_explaining_changes_no_prediction_and_keeps_the_model_mode(small_clips):
    model = tiny_model("attn").train()
    before = predict_probs(model, small_clips)[0]
    explain_clips(model, small_clips, np.arange(len(small_clips)), before.argmax(axis=2), n_steps=4)
    assert model.training
    np.testing.assert_array_equal(predict_probs(model, small_clips)[0], before)


def test_a_deploy_chunk_is_explained_without_changing_its_rows(small_clips, tmp_path):
    """What deploy --explain does per chunk: predict (clip_rows), then explain the predicted clips; rows stay the same."""
    model = tiny_model("attn")
    config = build_config(DeployConfig, "attn", min_frames=40)
    predictor = ChunkPredictor(torch_engine(model, config, "cpu"), config)
    rows = predictor.rows(small_clips)
    writer = ExplanationWriter(tmp_path, list(small_clips.feature_names), model.feature_mean.numpy(), plots=0)
    writer.explain_rows(model, small_clips, trait_levels(rows), n_steps=4)
    again = predictor.rows(small_clips)
    assert list(again) == list(rows)
    for name, values in rows.items():
        np.testing.assert_array_equal(again[name], values)
    stored = load_explanations(writer.close())
    predicted = np.isin(rows["status"], ["ok", "windowed"])
    assert 0 < predicted.sum() < len(predicted)  # some clips are too short and get no explanation
    assert list(stored.arrays["clip_id"]) == [str(i) for i in small_clips.ids[predicted]]
    np.testing.assert_array_equal(stored.arrays["levels"] / 4, trait_levels(rows)[predicted])


def test_writer_stores_every_clip_once_and_plots_the_first(small_clips, tmp_path):
    model = tiny_model("attn")
    levels = np.tile(np.arange(5), (len(small_clips), 1))
    writer = ExplanationWriter(tmp_path, list(small_clips.feature_names), model.feature_mean.numpy(), plots=2)
    for chunk in (np.arange(0, 5), np.arange(5, len(small_clips))):  # two deploy chunks
        part = small_clips.subset(chunk)
        writer.explain(model, part, np.arange(len(part)), levels[chunk], n_steps=4)
    path = writer.close()
    assert 0 < writer.max_delta < 0.1
    stored = load_explanations(path)
    assert list(stored.arrays["clip_id"]) == [str(i) for i in small_clips.ids]
    clip = stored.clip(str(small_clips.ids[7]))
    rows = slice(small_clips.offsets[7], small_clips.offsets[8])
    np.testing.assert_array_equal(clip["features"], small_clips.features[rows])
    assert clip["attributions"].shape == (small_clips.lengths[7], 5, 17)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"clip_{small_clips.ids[k]}.png" for k in (0, 1)]
    with pytest.raises(PerfexError, match="explanations.npz already exists; pass --force"):
        ExplanationWriter(tmp_path, list(small_clips.feature_names), model.feature_mean.numpy())
    with pytest.raises(PerfexError, match="clip nope is not in these explanations"):
        stored.clip("nope")


def test_quadratic_weighted_kappa_matches_sklearn():
    generator = np.random.default_rng(0)
    true = generator.integers(0, 5, (60, 5))
    pred = np.clip(true + generator.integers(-2, 3, (60, 5)), 0, 4)
    accuracy, kappa = _scores(true, pred[None])
    for t in range(5):
        assert kappa[0, t] == pytest.approx(cohen_kappa_score(true[:, t], pred[:, t], weights="quadratic"))
        assert accuracy[0, t] == pytest.approx((true[:, t] == pred[:, t]).mean())


def test_permutation_importance_finds_the_only_feature_a_predictor_reads(small_clips):
    """A predictor that reads only AU12's clip mean: shuffling AU12 costs accuracy, any other AU costs exactly 0."""
    clips = small_clips
    au12 = clips.feature_names.index("AU12_r")

    def predict(part: ClipSet) -> np.ndarray:
        means = np.add.reduceat(part.features[:, au12], part.offsets[:-1]) / part.lengths
        return np.tile(np.digitize(means, np.quantile(means_all, [0.2, 0.4, 0.6, 0.8]))[:, None], (1, 5))

    means_all = np.add.reduceat(clips.features[:, au12], clips.offsets[:-1]) / clips.lengths
    clips.levels = predict(clips)  # the predictor is perfect on the original clips
    for mode in ("shuffle", "mean"):
        table = permutation_importance(predict, clips, group_keys(clips), mode=mode, fill=np.zeros(17), n_boot=50)
        top = table[table["rank"] == 1]
        assert (top["feature"] == "AU12_r").all() and (top["accuracy_drop"] > 0.3).all()
        assert (table.loc[table["feature"] != "AU12_r", ["accuracy_drop", "qwk_drop"]] == 0).all().all()
        assert (table["qwk_drop_low"] <= table["qwk_drop"]).all() and (table["qwk_drop"] <= table["qwk_drop_high"]).all()
    with pytest.raises(PerfexError, match="use 'shuffle', or 'mean' with the training means as fill"):
        permutation_importance(predict, clips, group_keys(clips), mode="mean")


def test_attribution_importance_ranks_by_mean_absolute_attribution():
    attributions = [np.zeros((10, 5, 3)), np.zeros((4, 5, 3))]
    attributions[0][:, :, 2], attributions[1][:, :, 1] = -2.0, 1.0
    table = attribution_importance(attributions, ["a", "b", "c"], np.array(["v1", "v2"]), n_boot=20)
    first = table[table["trait"] == TRAITS[0]].set_index("feature")
    assert first.loc["c", "mean_abs_attribution"] == 1.0 and first.loc["b", "mean_abs_attribution"] == 0.5
    assert list(first.sort_values("rank").index) == ["c", "b", "a"]


def _train_tiny_cnn(clips: ClipSet, epochs: int = 40) -> torch.nn.Module:
    """A short plain torch loop (independent of the training engine)."""
    torch.manual_seed(0)
    model = create_model("cnn", hidden_channels=8, branch_channels=8, head_hidden=16, kernels=(3, 5), dropout=0.0)
    model.set_normalization(clips.features.mean(axis=0), clips.features.std(axis=0) + 1e-6)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    order = np.random.default_rng(0)
    for _ in range(epochs):
        for index in np.array_split(order.permutation(len(clips)), max(len(clips) // 32, 1)):
            batch = collate(clips, index, np.zeros(len(index), dtype=np.int64), clips.lengths[index])
            logits = model(batch.x, batch.lengths, batch.times).view(-1, 5, 5)
            loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), batch.levels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def test_a_trained_model_ranks_the_planted_extroversion_aus_on_top(tmp_path):
    """Planted link checked (data/README.md): extroversion drives talking (AU25 + AU26 at 4.5 Hz, amplitude 0.45 + 0.15z)
    and smile bursts (AU12 + AU25); au_analysis ranks AU25/AU26 statistics first for extroversion. The model must rank
    AU25 and AU26 among its top three for extroversion by attribution and by permutation importance."""
    path = tmp_path / "train.csv"
    generate_perfex(400, seed=11, spread=3.0, min_frames=60, max_frames=100).to_csv(path, index=False)
    clips = load_clips(path, require_labels=True)
    train, test = np.arange(300), np.arange(300, 400)
    model = _train_tiny_cnn(clips.subset(train))
    attribution, permutation = model_importance(model, clips.subset(test), n_steps=16, n_boot=100)
    for table in (attribution, permutation):
        top3 = set(table[(table["trait"] == "extroversion") & (table["rank"] <= 3)]["feature"])
        assert {"AU25_r", "AU26_r"} <= top3, table[table["trait"] == "extroversion"].head(5)
    text = write_importance(tmp_path / "report", attribution, permutation)
    assert "| extroversion | 1 |" in text
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "importance.md", "importance.png", "importance_attribution.csv", "importance_permutation.csv"]
