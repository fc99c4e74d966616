"""Per-trait model selection: gates open only where the deep path beats the statistics start on that trait, the kept
epoch is the best gated one, early stopping waits for every trait, and a gated checkpoint predicts the same on torch
and ONNX Runtime."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from models.registry import families
from perfex.train.selection import TraitSelection, paired_standard_errors, trait_scores

pytestmark = pytest.mark.e2e


def probabilities(levels: np.ndarray, sharpness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, 5, 5] probabilities whose mass on the true level grows with each trait's ``sharpness``."""
    logits = rng.normal(size=(*levels.shape, 5)) + sharpness[None, :, None] * np.eye(5)[levels]
    return np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)


def test_paired_standard_error_matches_the_closed_form_and_grows_with_clustered_clips():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 5, (600, 5))
    start = probabilities(levels, np.full(5, 1.0), rng)
    later = 0.8 * start + 0.2 * probabilities(levels, np.full(5, 3.0), rng)
    empty = np.full((600, 5), np.nan)
    gain = np.log(np.take_along_axis(later, levels[..., None], 2)[..., 0]) - np.log(np.take_along_axis(start, levels[..., None], 2)[..., 0])
    each_clip = paired_standard_errors(later, start, levels, empty, "softmax", "loss", np.arange(600), seed=1, resamples=400)
    np.testing.assert_allclose(each_clip, gain.std(axis=0) / np.sqrt(600), rtol=0.2)
    videos = np.repeat(np.arange(100), 6)  # six clips a video, the same clip drawn six times: far noisier
    clustered = paired_standard_errors(later[np.repeat(np.arange(100), 6)], start[np.repeat(np.arange(100), 6)],
                                       levels[np.repeat(np.arange(100), 6)], empty, "softmax", "loss", videos, seed=1, resamples=400)
    assert (clustered > 1.8 * each_clip).all()


@pytest.mark.parametrize("select", ["loss", "qwk", "f1"])
def test_a_trait_opens_its_gate_only_where_the_deep_path_helps_it(select):
    """Trait 0 gains a lot from the deep path, trait 1 a little less each epoch (over-fitting), traits 2-4 nothing:
    only trait 0 opens, the kept epoch is trait 0's best, and early stopping waits for trait 0."""
    rng = np.random.default_rng(3)
    levels = rng.integers(0, 5, (900, 5))
    groups = np.repeat(np.arange(300), 3)
    empty = np.full((900, 5), np.nan)
    start = probabilities(levels, np.full(5, 1.0), rng)
    selection = TraitSelection(select, "softmax", 5)
    selection.set_start(start, levels, empty)
    assert selection.update(0, start, levels, empty, groups, seed=0).gates.sum() == 0
    sharpness = [2.0, 2.5, 3.0, 3.0, 2.8, 2.6]  # trait 0's deep path: best at epoch 3, then slowly worse
    kept = []
    for epoch, sharp in enumerate(sharpness, start=1):
        noisy = probabilities(levels, np.array([sharp, 0.4, 1.0, 1.0, 1.0]), np.random.default_rng(100 + epoch))
        probs = start.copy()
        probs[:, 0] = noisy[:, 0]
        probs[:, 1] = noisy[:, 1]  # less sure of the true level than the start
        verdict = selection.update(epoch, probs, levels, empty, groups, seed=epoch)
        assert verdict.gates.tolist() == [1, 0, 0, 0, 0], (epoch, verdict.gates)
        kept.append(selection.state.best_epoch)
        assert not selection.should_stop(patience=3) or epoch >= 6
    assert selection.state.best_gates == [1, 0, 0, 0, 0]
    assert selection.state.best_epoch in (3, 4)


def test_early_stopping_waits_until_no_trait_improves():
    selection = TraitSelection("loss", "softmax", 2)
    selection.state.trait_since = [5, 1]
    assert not selection.should_stop(patience=3)
    selection.state.trait_since = [5, 3]
    assert selection.should_stop(patience=3)


def test_trait_scores_are_per_trait_log_likelihoods_or_agreement():
    levels = np.array([[0, 4], [1, 3], [2, 2]])
    probs = np.full((3, 2, 5), 0.2)
    probs[:, 1] = np.eye(5)[levels[:, 1]] * 0.96 + 0.01
    scores = trait_scores(probs, levels, np.full((3, 2), np.nan), "softmax", "loss")
    np.testing.assert_allclose(scores, [np.log(0.2), np.log(0.97)])
    assert trait_scores(probs, levels, None, "softmax", "qwk")[1] == pytest.approx(1.0)


def timing_only_table(n_clips: int, seed: int) -> pd.DataFrame:
    """A PerFeX long table whose extroversion is the order of two AU pulses (AU01 then AU12 or the reverse), invisible
    to per-clip means and standard deviations; the other four traits are noise."""
    from perfex.core.schema import AU_INTENSITY_COLUMNS, TRAITS

    rng = np.random.default_rng(seed)
    frames, rows = 60, []
    for clip in range(n_clips):
        x = rng.normal(0.3, 0.05, (frames, len(AU_INTENSITY_COLUMNS)))
        first = rng.integers(5, 30)
        order = rng.integers(0, 2)
        lead, follow = (0, 8) if order else (8, 0)  # AU01 first when the clip is extroverted
        x[first : first + 6, lead] += 2.0
        x[first + 12 : first + 18, follow] += 2.0
        labels = np.r_[order, rng.integers(0, 2, 4)] * 0.5 + 0.25
        table = pd.DataFrame(np.round(x, 3), columns=AU_INTENSITY_COLUMNS)
        table.insert(0, "File", f"v{clip:05d}abcdef.{clip % 3:03d}.mp4")
        table.insert(0, "ID", clip)
        for trait, value in zip(TRAITS, labels):
            table[trait] = value
        rows.append(table)
    return pd.concat(rows, ignore_index=True)


def test_training_keeps_the_deep_path_only_for_the_trait_whose_timing_it_reads(tmp_path):
    """Trait 0 is timing only, traits 1-4 noise: the kept checkpoint opens trait 0's gate, and every closed trait
    predicts exactly what the statistics start predicts; metrics.csv and the checkpoint record the gates."""
    from perfex.checkpoint.io import load_checkpoint
    from perfex.data.options import TrainConfig, build_config
    from perfex.core.schema import TRAITS
    from perfex.train.loop import fit

    data = tmp_path / "timing.csv.gz"
    timing_only_table(480, seed=0).to_csv(data, index=False)
    run = tmp_path / "run"
    fit(build_config(TrainConfig, "cnn", data=[str(data)], out=str(run), epochs=12, patience=6, progress=False,
                     min_frames=10, max_frames=64, batch_size=32, threads=1, calibrate=False, timing_score=False))
    history = pd.read_csv(run / "metrics.csv")
    assert {f"deep_{t}" for t in TRAITS} | {f"val_loss_{t}" for t in TRAITS} | {"val_gated_loss"} <= set(history.columns)
    meta = json.loads((run / "best.json").read_text())
    assert meta["deep_gates"][0] == 1.0, history.filter(like="deep_")
    assert json.loads((run / "last.json").read_text())["deep_gates"] is None  # the model as trained: every gate open
    assert sum(meta["deep_gates"]) < 5  # noise traits pass one standard error now and then; never all of them
    losses = history[[f"val_loss_{t}" for t in TRAITS]].to_numpy()
    improved = losses < np.minimum.accumulate(np.vstack([np.full(5, np.inf), losses[:-1]]), axis=0)
    since = np.zeros(5, dtype=int)
    for epoch in range(len(history) - 1):  # the learning rate halves after every 2 epochs in which no trait improved
        since = np.where(improved[epoch], 0, since + 1)
        halves = epoch > 0 and since.min() > 0 and since.min() % 2 == 0
        assert history["lr"][epoch + 1] == pytest.approx(history["lr"][epoch] / (2 if halves else 1)), epoch
    model, _ = load_checkpoint(run / "best.safetensors")
    start = load_checkpoint(run / "best.safetensors")[0]
    start.set_deep_gates(torch.zeros(5))
    x = torch.randn(16, 60, 17).abs()
    lengths = torch.full((16,), 60)
    with torch.no_grad():
        gated, statistics_only = model(x, lengths).view(16, 5, 5), start(x, lengths).view(16, 5, 5)
    closed = [t for t, g in enumerate(meta["deep_gates"]) if g == 0]
    torch.testing.assert_close(gated[:, closed], statistics_only[:, closed], rtol=0, atol=0)
    assert not torch.allclose(gated[:, 0], statistics_only[:, 0])


def test_with_timing_score_the_start_itself_reads_the_timing_trait_and_deploys_alike_on_both_runtimes(tmp_path):
    """The timing score (on by default): the kernel features stay in the checkpoint (extroversion reads the score), the start alone
    (every gate closed) ranks fresh clips by their pulse order, and ONNX Runtime deploys what torch does."""
    pytest.importorskip("onnxruntime")
    from perfex.checkpoint.io import load_checkpoint
    from perfex.core.schema import AU_INTENSITY_COLUMNS
    from perfex.data.options import DeployConfig, TrainConfig, build_config
    from perfex.infer.deploy import deploy
    from perfex.train.loop import fit
    from models.wide import KERNEL_FEATURES

    data, fresh = tmp_path / "timing.csv.gz", tmp_path / "fresh.csv.gz"
    timing_only_table(480, seed=0).to_csv(data, index=False)
    test = timing_only_table(100, seed=1)
    test.to_csv(fresh, index=False)
    run = tmp_path / "run"
    fit(build_config(TrainConfig, "cnn", data=[str(data)], out=str(run), epochs=1, progress=False, min_frames=10,
                     max_frames=64, batch_size=32, threads=1, calibrate=False))
    start, meta = load_checkpoint(run / "best.safetensors")
    assert meta.model_config["kernel_features"] == KERNEL_FEATURES
    start.set_deep_gates(torch.zeros(5))
    x = torch.tensor(test[list(AU_INTENSITY_COLUMNS)].to_numpy(np.float32).reshape(100, 60, 17))
    with torch.no_grad():
        expected_level = start.level_probabilities(start(x, torch.full((100,), 60)))[:, 0] @ torch.arange(5.0)
    order = test.groupby("ID", sort=True)["extroversion"].first().to_numpy()
    assert np.corrcoef(expected_level.numpy(), order)[0, 1] > 0.5
    outputs = {}
    for runtime in ("torch", "onnxruntime"):
        deploy(build_config(DeployConfig, "cnn", weights=str(run / "best.safetensors"), data=[str(fresh)], min_frames=10,
                            out=str(tmp_path / f"{runtime}.csv"), runtime=runtime, progress=False))
        outputs[runtime] = pd.read_csv(tmp_path / f"{runtime}.csv")
    probs = [c for c in outputs["torch"] if c.startswith("p_")]
    np.testing.assert_allclose(outputs["onnxruntime"][probs].to_numpy(), outputs["torch"][probs].to_numpy(), atol=2e-5)


def test_gated_checkpoint_deploys_the_same_on_torch_and_onnx_runtime(tmp_path):
    """The gates live in the checkpoint's metadata; the ONNX export bakes them in, so both runtimes agree."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from models import config_to_dict, create_model
    from perfex.checkpoint.io import load_checkpoint, save_checkpoint
    from perfex.checkpoint.metadata import CheckpointMeta
    from perfex.infer.onnx_export import export_probabilities

    torch.manual_seed(0)
    for family in families():
        model = create_model(family).eval()
        weights = tmp_path / f"{family}.safetensors"
        save_checkpoint(model, weights, CheckpointMeta(model=family, model_config=config_to_dict(model), deep_gates=[1, 0, 1, 0, 0]))
        loaded, meta = load_checkpoint(weights)
        assert meta.deep_gates == [1, 0, 1, 0, 0] and loaded.gated
        x, lengths = torch.randn(3, 50, 17), torch.tensor([50, 40, 30])
        times = torch.arange(50, dtype=torch.float32)[None].expand(3, -1) / 30
        with torch.no_grad():
            expected = loaded.level_probabilities(loaded(x, lengths, times)).numpy()
            ungated = load_checkpoint(weights)[0]
            ungated.set_deep_gates(torch.ones(5))
            assert not np.allclose(ungated.level_probabilities(ungated(x, lengths, times)).numpy(), expected)
        graph = export_probabilities(loaded, tmp_path / f"{family}.onnx")
        session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy(), "lengths": lengths.numpy(), "times": times.numpy()}
        got = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})[0]  # the CNN's graph has no times
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_min_crop_trains_on_random_shares_of_each_clip():
    from perfex.data.batches import training_batches
    from perfex.core.clips import ClipSet

    lengths = np.array([100, 200, 300, 400])
    clips = ClipSet(ids=np.arange(4), files=np.array([f"{i}.mp4" for i in range(4)], dtype=object),
                    offsets=np.r_[0, np.cumsum(lengths)], features=np.zeros((lengths.sum(), 2), dtype=np.float32),
                    times=np.zeros(lengths.sum()), feature_names=("a", "b"), levels=np.zeros((4, 5), dtype=np.int64))
    whole = training_batches(clips, np.arange(4), 2, 700, np.random.default_rng(0))
    assert sorted(np.concatenate([b[2] for b in whole]).tolist()) == lengths.tolist()
    for seed in range(20):
        for index, starts, crop in training_batches(clips, np.arange(4), 2, 700, np.random.default_rng(seed), min_crop=0.6):
            full = lengths[index]
            assert ((crop >= np.round(0.6 * full)) & (crop <= full) & (starts >= 0) & (starts + crop <= full)).all()


def test_cnn_branches_double_their_dilation_and_old_configs_keep_one():
    from models import create_model
    from perfex.checkpoint.metadata import with_options_added_later

    model = create_model("cnn")
    assert [conv.dilation[0] for conv in model.second] == [1, 2, 4, 8]
    old = with_options_added_later("cnn", {"kernels": [3, 5, 7, 9]})
    assert [conv.dilation[0] for conv in create_model("cnn", **old).second] == [1, 1, 1, 1]
    x = torch.zeros(1, 300, 17)
    x_far = x.clone()
    x_far[0, :16] = 3.0  # frames 0-15; at frame 35 only the branches reaching 20 frames back see them (radius 2, 8, 24, 64)
    model.eval()
    with torch.no_grad():
        hidden = [torch.relu(s(torch.relu(f(x.transpose(1, 2))))) for f, s in zip(model.first, model.second)]
        moved = [torch.relu(s(torch.relu(f(x_far.transpose(1, 2))))) for f, s in zip(model.first, model.second)]
    reaches = [bool((a[0, :, 35] != b[0, :, 35]).any()) for a, b in zip(hidden, moved)]
    assert reaches == [False, False, True, True]
