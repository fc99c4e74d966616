"""Quality benchmark (synthetic data): learning curves of the networks against simple baselines on the same clips.

For each data kind (``documented``: the generator's documented links; ``timing``: traits that change only the
order, co-occurrence and regularity of events, invisible to per-clip means/stds; ``mixed``: each trait drawn from
``--seed`` to be timing-linked, statistics-linked or unlinked, see ``perfex.data.synth.mixed_roles``) it generates
(cached) a training pool and a separate, source-video-disjoint test set, trains every system at each training size
and prints one table per size with bootstrap 95% intervals over source videos, then each trait's accuracy, Pearson r
and QWK and, on timing and mixed data, whether each network meets its per-trait target. Writes JSON and a
learning-curve PNG. Synthetic data only.

Baselines: majority class, train-mean, logistic regression and gradient boosting on AU mean/std. Time-series peers
(need aeon): ``minirocket`` and ``multirocket_hydra`` features + ridge. ``planted`` is a reference, not a baseline:
the logistic regression handed six statistics of the timing links the timing generator plants, i.e. roughly what
knowing them is worth on these clips. ``--train-seeds 0,1,2`` trains each network once per seed and reports the
mean over seeds (single runs differ by about a point).

    python bench/quality.py --quick
    python bench/quality.py --sizes 1000,3000 --kinds documented,timing,mixed --train-seeds 0,1,2
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.registry import families  # noqa: E402
from perfex.train.calibration import apply_temperatures, calibration_report, fit_temperatures, reliability_diagram  # noqa: E402
from perfex.core.clips import ClipSet  # noqa: E402
from perfex.core.errors import PerfexError  # noqa: E402
from perfex.core.metrics import clip_summary_features  # noqa: E402
from perfex.data.readers import load_clips  # noqa: E402
from perfex.train.losses import level_probabilities  # noqa: E402
from perfex.core.schema import AU_INTENSITY_COLUMNS, TRAITS  # noqa: E402
from perfex.data.splits import group_keys  # noqa: E402
from perfex.data.synth import generate_perfex, mixed_roles, write_table  # noqa: E402

METRICS = ("accuracy", "f1_macro", "qwk", "off_by_one", "mae_levels", "one_minus_mae", "ccc")
POOL_VAL_CAPACITY = 300
KINDS = ("documented", "timing", "mixed")
TIMING_R_FLOOR = 0.25  # a timing-linked trait's least Pearson r for a network
ACCURACY_MARGIN = 0.01  # how far below the logistic regression a statistics-only or unlinked trait may fall


# ----- data -----
def parse_kinds(text: str) -> list[str]:
    """``--kinds`` as a list, every name checked against KINDS."""
    kinds = text.split(",")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise PerfexError(f"unknown data kind {unknown[0]!r}; --kinds takes a comma-separated list of {', '.join(KINDS)}")
    return kinds


def trait_roles(kind: str, seed: int) -> dict[str, tuple[str, float]] | None:
    """Each trait's (role, strength) on ``kind`` data: all timing on timing data, ``mixed_roles(seed)`` on mixed data,
    None on documented data (its traits mix both kinds of link)."""
    if kind == "timing":
        return {trait: ("timing", 1.0) for trait in TRAITS}
    return mixed_roles(seed) if kind == "mixed" else None


def cached_table(cache: Path, kind: str, n_clips: int, seed: int, spread: float, id_start: int, roles_seed: int) -> Path:
    """Generate (once) a labelled PerFeX file of ``n_clips`` realistic-length clips (300-460 frames); mixed data
    takes its trait roles from ``roles_seed``, which its name records."""
    roles = f"-roles{roles_seed}" if kind == "mixed" else ""
    path = cache / f"{kind}{roles}_spread{spread:g}_seed{seed}_n{n_clips}.csv.gz"
    if not path.exists():
        print(f"generating {path.name} ...", flush=True)
        frame = generate_perfex(n_clips, seed, spread=spread, min_frames=300, max_frames=460, id_start=id_start, variant=kind,
                                roles_seed=roles_seed)
        cache.mkdir(parents=True, exist_ok=True)
        write_table(frame, path.with_suffix(".tmp.gz"))
        path.with_suffix(".tmp.gz").rename(path)
    return path


def take_videos(keys: np.ndarray, order: np.ndarray, n_clips: int) -> list[str]:
    """Whole source videos, in ``order``, until they hold at least ``n_clips`` clips."""
    chosen, total = [], 0
    for key in order:
        if total >= n_clips:
            break
        chosen.append(key)
        total += int((keys == key).sum())
    if total < 0.99 * n_clips:  # the pool's last videos may leave a size up to 1% short; the JSON records n_train
        raise PerfexError(f"the pool holds {total} clips, fewer than the {n_clips} asked for; lower --sizes")
    return chosen


def load_sets(kind: str, size: int, args: argparse.Namespace) -> dict:
    """Pool file, split manifest (train = first videos, val = last videos), the loaded pool and the test set."""
    parse_kinds(kind)
    if args.val_clips > POOL_VAL_CAPACITY:
        raise PerfexError(f"--val-clips {args.val_clips} exceeds the pool's {POOL_VAL_CAPACITY} validation clips")
    max_size = max(3000, *(int(s) for s in args.sizes.split(",")))
    pool_path = cached_table(args.cache, kind, max_size + POOL_VAL_CAPACITY, args.seed, args.spread, 0, args.seed)
    test_seed = args.seed + 1000 if args.test_seed is None else args.test_seed
    test_path = cached_table(args.cache, kind, args.test_clips, test_seed, args.spread, 10_000_000 * max(1, test_seed // 1000),
                             args.seed)
    pool, test = load_clips(pool_path, require_labels=True), load_clips(test_path, require_labels=True)
    keys = group_keys(pool)
    videos = np.array(sorted(set(keys), key=lambda k: int(pool.ids[np.argmax(keys == k)])), dtype=object)
    val = take_videos(keys, videos[::-1], args.val_clips)
    train = take_videos(keys, np.array([v for v in videos if v not in set(val)], dtype=object), size)
    rest = sorted(set(videos) - set(val) - set(train))
    manifest = {"format": "perfex-split", "version": 1, "group_by": "source video", "seed": args.seed,
                "fractions": [0, 0, 0], "train": sorted(train), "val": sorted(val), "test": rest}
    index = {name: np.flatnonzero(np.isin(keys, manifest[name])) for name in ("train", "val")}
    return {"kind": kind, "size": size, "pool_path": pool_path, "manifest": manifest, "pool": pool,
            "train": pool.subset(index["train"]), "val": pool.subset(index["val"]), "test": test,
            "test_groups": group_keys(test)}


# ----- baselines -----
def _one_hot(levels: np.ndarray, n: int) -> np.ndarray:
    return np.repeat(np.eye(5)[levels][None], n, axis=0)


def majority(sets: dict, seed: int) -> np.ndarray:
    """Each trait's most frequent training level, with certainty."""
    levels = np.array([np.bincount(sets["train"].levels[:, t], minlength=5).argmax() for t in range(5)])
    return _one_hot(levels, len(sets["test"]))


def train_mean(sets: dict, seed: int) -> np.ndarray:
    """The level nearest each trait's mean training level, with certainty."""
    return _one_hot(np.rint(sets["train"].levels.mean(axis=0)).astype(int), len(sets["test"]))


def _per_trait_classifier(make, sets: dict, evaluate: str = "test", features: dict | None = None) -> np.ndarray:
    """Fit one classifier per trait on the training clips' AU mean/std (or ``features[part]``); level probabilities
    [N, 5, 5] on ``evaluate``."""
    x_train, x_eval = ((features["train"], features[evaluate]) if features is not None
                       else (clip_summary_features(sets["train"]), clip_summary_features(sets[evaluate])))
    probs = np.zeros((len(x_eval), 5, 5))
    for t in range(5):
        model = make().fit(x_train, sets["train"].levels[:, t])
        probs[:, t, model.classes_] = model.predict_proba(x_eval)
    return probs


def logreg(sets: dict, seed: int, features: dict | None = None) -> np.ndarray:
    """Standardised AU mean/std (or ``features``) -> multinomial logistic regression (C picked by validation log-loss)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def make(c: float):
        return lambda: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    best = min((0.01, 0.1, 1.0), key=lambda c: calibration_report(_per_trait_classifier(make(c), sets, "val", features), sets["val"].levels)["nll"])
    return _per_trait_classifier(make(best), sets, features=features)


def hgb(sets: dict, seed: int) -> np.ndarray:
    """Histogram gradient boosting on AU mean/std: 150 shallow trees at rate 0.05 (fixed; rare levels defeat early stopping)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _per_trait_classifier(lambda: HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_depth=3, min_samples_leaf=20,
                                                                        early_stopping=False, random_state=seed), sets)


def _standardised(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / (values.std() + 1e-6)


def _lagged_order(leader: np.ndarray, follower: np.ndarray, lags: range) -> float:
    """Mean correlation of ``follower`` ``lags`` frames after ``leader``, minus the reverse order."""
    a, b = _standardised(leader), _standardised(follower)
    lags = [lag for lag in lags if lag < len(a)]
    return float(np.mean([np.mean(a[:-lag] * b[lag:]) - np.mean(b[:-lag] * a[lag:]) for lag in lags])) if lags else 0.0


def _interval_cv(track: np.ndarray) -> float:
    """Coefficient of variation of the intervals between peaks 1 above the track's median (blinks); 1 if < 3 peaks."""
    x = track - np.median(track)
    peaks = np.flatnonzero((x[1:-1] > 1.0) & (x[1:-1] >= x[:-2]) & (x[1:-1] > x[2:])) + 1
    gaps = np.diff(peaks)
    return float(gaps.std() / gaps.mean()) if len(gaps) >= 2 else 1.0


def au_columns(clips: ClipSet, user: str) -> dict[str, int]:
    """Column of each of the 17 AU intensities in ``clips``; ``user`` names who needs them in the error."""
    au = {name: i for i, name in enumerate(clips.feature_names)}
    missing = sorted(set(AU_INTENSITY_COLUMNS) - set(au))
    if missing:
        raise PerfexError(f"{user} need the AU intensity columns; the clips lack {', '.join(missing[:3])}")
    return au


def planted_statistics(clips: ClipSet) -> np.ndarray:
    """[N, 6] hand-made statistics of the timing links ``perfex.data.synth`` plants (data/README.md section 3):
    AU06-AU12 co-occurrence, blink-interval CV, and the order of AU01->AU12, AU01->AU10, AU04->AU15, AU12->AU26."""
    au = au_columns(clips, "planted statistics")
    rows = []
    for index in range(len(clips)):
        x = clips.clip(index).astype(np.float64)
        rows.append([float(np.mean(_standardised(x[:, au["AU06_r"]]) * _standardised(x[:, au["AU12_r"]]))),
                     _interval_cv(x[:, au["AU45_r"]]),
                     _lagged_order(x[:, au["AU01_r"]], x[:, au["AU12_r"]], range(12, 31, 3)),
                     _lagged_order(x[:, au["AU01_r"]], x[:, au["AU10_r"]], range(12, 31, 3)),
                     _lagged_order(x[:, au["AU04_r"]], x[:, au["AU15_r"]], range(9, 22, 3)),
                     _lagged_order(x[:, au["AU12_r"]], x[:, au["AU26_r"]], range(45, 76, 5))])
    return np.array(rows)


def planted(sets: dict, seed: int) -> np.ndarray:
    """Reference, not a baseline (it knows the generator): ``logreg`` on AU mean/std plus ``planted_statistics``."""
    features = {part: np.hstack([clip_summary_features(sets[part]), planted_statistics(sets[part])]) for part in ("train", "val", "test")}
    return logreg(sets, seed, features)


BASELINES = {"majority": majority, "train_mean": train_mean, "logreg": logreg, "hgb": hgb, "planted": planted}


# ----- time-series peers (aeon; the perfex package never imports it) -----
PEER_ALPHAS = np.logspace(-3, 3, 10)
TEMPERATURES = np.logspace(-3, 1, 41)


def aeon_available() -> bool:
    return importlib.util.find_spec("aeon") is not None


def fixed_length(clips: ClipSet, length: int) -> np.ndarray:
    """[N, 17, length] float32 AU channels (aeon's transforms need equal lengths): a clip longer than ``length``
    keeps its first ``length`` frames, a shorter one is padded by repeating it from its first frame (wrap-around)."""
    columns = [au_columns(clips, "the time-series peers")[name] for name in AU_INTENSITY_COLUMNS]
    out = np.empty((len(clips), len(columns), length), dtype=np.float32)
    for i in range(len(clips)):
        x = clips.clip(i)[:, columns]
        out[i] = x[np.arange(length) % len(x)].T
    return out


def _transformed(transform, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fit ``transform`` on the training array, then transform every part (restores torch's thread count, which
    aeon's Hydra sets to its n_jobs)."""
    threads = torch.get_num_threads()
    try:
        transform.fit(arrays["train"])
        return {part: np.asarray(transform.transform(x), dtype=np.float32) for part, x in arrays.items()}
    finally:
        torch.set_num_threads(threads)


def _decision_matrix(model, x: np.ndarray) -> np.ndarray:
    """[N, n_classes] ridge decision values (a binary ridge classifier gives one column: -d, d)."""
    decision = model.decision_function(x)
    return np.stack([-decision, decision], axis=1) if decision.ndim == 1 else decision


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _level_probabilities(model, x: np.ndarray, temperature: float) -> np.ndarray:
    """[N, 5] softmax of the decision values over the training levels (0 for levels absent from training)."""
    probs = np.zeros((len(x), 5))
    probs[:, model.classes_] = _softmax(_decision_matrix(model, x) / temperature)
    return probs


def _temperature(model, x_val: np.ndarray, levels: np.ndarray) -> float:
    """The softmax temperature with the lowest validation log-loss."""
    losses = [-np.log(np.maximum(_level_probabilities(model, x_val, t)[np.arange(len(levels)), levels], 1e-12)).mean()
              for t in TEMPERATURES]
    return float(TEMPERATURES[int(np.argmin(losses))])


def peer_probabilities(transforms: list, sets: dict) -> np.ndarray:
    """Level probabilities [N, 5, 5] on the test clips from aeon ``transforms`` fitted once on the training clips.

    Clips go in as ``fixed_length`` arrays of the longest training clip's length. The transforms' features are
    concatenated and standardised; per trait a RidgeClassifierCV (alphas 1e-3..1e3) gives the level and a softmax
    of its decision values, with a temperature fitted on the validation clips by log-loss, the probabilities, so
    their expected level (from which the bench computes Pearson r) is the peer's continuous prediction.
    """
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    length = int(sets["train"].lengths.max())
    arrays = {part: fixed_length(sets[part], length) for part in ("train", "val", "test")}
    blocks = [_transformed(transform, arrays) for transform in transforms]
    features = {part: np.hstack([block[part] for block in blocks]) for part in arrays}
    scaler = StandardScaler().fit(features["train"])
    features = {part: scaler.transform(x) for part, x in features.items()}
    probs = np.zeros((len(sets["test"]), 5, 5))
    for t in range(5):
        model = RidgeClassifierCV(alphas=PEER_ALPHAS).fit(features["train"], sets["train"].levels[:, t])
        temperature = _temperature(model, features["val"], sets["val"].levels[:, t])
        probs[:, t] = _level_probabilities(model, features["test"], temperature)
    return probs


def minirocket(sets: dict, seed: int) -> np.ndarray:
    """aeon MiniRocket (10,000 kernels, multivariate) features + ridge (``peer_probabilities``)."""
    from aeon.transformations.collection.convolution_based import MiniRocket

    return peer_probabilities([MiniRocket(n_jobs=1, random_state=seed)], sets)


def multirocket_hydra(sets: dict, seed: int) -> np.ndarray:
    """aeon MultiRocket (6,250 kernels) and Hydra (8 kernels x 64 groups) features concatenated + ridge, as aeon's
    MultiRocketHydraClassifier builds them (``peer_probabilities``; one StandardScaler for both blocks)."""
    from aeon.transformations.collection.convolution_based import HydraTransformer, MultiRocket

    return peer_probabilities([MultiRocket(n_jobs=1, random_state=seed),
                               HydraTransformer(n_jobs=1, random_state=seed, output_type="numpy")], sets)


PEERS = {"minirocket": minirocket, "multirocket_hydra": multirocket_hydra}
NON_NETWORKS = {**BASELINES, **PEERS}


# ----- networks -----
def train_with_engine(family: str, pool_path: Path, manifest_path: Path, run_dir: Path, epochs: int, seed: int, options: dict) -> Path:
    """THE one call into the training engine; returns the selected checkpoint. Adapt here when the trainer changes."""
    from perfex.data.options import TrainConfig, build_config
    from perfex.train.loop import fit

    settings = {"seed": seed, **options}  # --train-option seed=N varies the networks' training seed, not the data
    fit(build_config(TrainConfig, family, data=[str(pool_path)], out=str(run_dir), split=str(manifest_path), epochs=epochs,
                     progress=False, min_frames=40, **settings))
    return run_dir / "best.safetensors"


@torch.no_grad()
def network_logits(model: torch.nn.Module, clips: ClipSet, batch_size: int = 64) -> np.ndarray:
    """Logits [N, 25] of whole clips (the test clips are shorter than every model's window)."""
    order = np.argsort(clips.lengths, kind="stable")
    logits = np.zeros((len(clips), 25), dtype=np.float32)
    for begin in range(0, len(order), batch_size):
        chosen = order[begin : begin + batch_size]
        width = int(clips.lengths[chosen].max())
        x = torch.zeros(len(chosen), width, clips.n_features)
        times = torch.zeros(len(chosen), width)
        for row, clip in enumerate(chosen):
            x[row, : clips.lengths[clip]] = torch.from_numpy(clips.clip(int(clip)))
            times[row, : clips.lengths[clip]] = torch.from_numpy(clips.clip_times(int(clip)) - clips.clip_times(int(clip))[0])
        logits[chosen] = model(x, torch.as_tensor(clips.lengths[chosen]), times).float().numpy()
    return logits


def run_directory(family: str, kind: str, size: int, args: argparse.Namespace, options: dict) -> tuple[Path, str]:
    """Where one network run is cached, and the setting that names it (any change of setting is a new run)."""
    setting = json.dumps([kind, size, family, args.tag, args.epochs, args.seed, args.spread, args.val_clips, options])
    seed_suffix = f"+seed{options['seed']}" if "seed" in options else ""
    return args.cache / "runs" / f"{kind}_{size}_{family}{args.tag}{seed_suffix}_{hashlib.sha1(setting.encode()).hexdigest()[:8]}", setting


def train_network(family: str, sets: dict, args: argparse.Namespace, options: dict) -> tuple[np.ndarray, dict]:
    """Train through the engine (cached per setting), predict the test clips; temperatures fitted on validation."""
    from perfex.checkpoint.io import load_checkpoint

    run_dir, setting = run_directory(family, sets["kind"], sets["size"], args, options)
    weights = run_dir / "run" / "best.safetensors"
    if not (run_dir / "done").exists():
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        (run_dir / "split_manifest.json").write_text(json.dumps(sets["manifest"]))
        train_with_engine(family, sets["pool_path"], run_dir / "split_manifest.json", run_dir / "run", args.epochs, args.seed, options)
        (run_dir / "done").write_text(setting)
    model, meta = load_checkpoint(weights)
    loss = "ordinal" if model.config.output == "corn" else "ce"
    val_logits, test_logits = network_logits(model, sets["val"]), network_logits(model, sets["test"])
    temperatures = fit_temperatures(val_logits, sets["val"].levels, loss)
    raw = level_probabilities(torch.from_numpy(test_logits), loss).numpy()
    scaled = level_probabilities(apply_temperatures(torch.from_numpy(test_logits), temperatures), loss).numpy()
    diagram = reliability_diagram({"raw": raw, "temperature-scaled": scaled}, sets["test"].levels, run_dir / "reliability.png")
    calibration = {"temperatures": temperatures.round(3).tolist(), "before": calibration_report(raw, sets["test"].levels),
                   "after": calibration_report(scaled, sets["test"].levels), "best_epoch": meta.epoch,
                   "reliability_diagram": str(diagram)}
    return raw, calibration


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--kinds", default="documented,timing",
        help="data kinds, comma-separated: documented, timing, mixed (default: %(default)s)")
    add("--sizes", default="300,1000,3000", help="training-set sizes in clips (default: %(default)s)")
    add("--test-clips", type=int, default=1000, help="clips in the separate test set (default: %(default)s)")
    add("--val-clips", type=int, default=300, help="validation clips (source-disjoint, from the pool) (default: %(default)s)")
    add("--spread", type=float, default=1.0, help="trait spread: 1 = First Impressions-like labels, 2-3 easier (default: %(default)s)")
    add("--seed", type=int, default=0, help="data and training seed; also draws mixed data's trait roles (default: %(default)s)")
    add("--test-seed", type=int, default=None, help="seed of the test set, for a second independent one (default: --seed + 1000)")
    add("--systems", default=",".join(["majority", "train_mean", "logreg", "hgb", "planted", *PEERS, *families()]),
        help="systems to run (default: %(default)s); networks: any registry name; planted: a reference that knows the "
             "generator (logreg plus statistics of the planted timing links); minirocket, multirocket_hydra: aeon "
             "time-series peers (skipped when aeon is not installed)")
    add("--epochs", type=int, default=30, help="network training epochs (default: %(default)s)")
    add("--train-seeds", default=None, metavar="S,S,...",
        help="train each network once per training seed and report the mean over seeds, e.g. 0,1,2 (default: --seed)")
    add("--train-option", action="append", default=[], metavar="KEY=VALUE",
        help="override a TrainConfig field for the networks, e.g. loss=ordinal or seed=1 (repeatable)")
    add("--tag", default="", help="suffix for the network names in the tables and JSON, e.g. +wide (default: none)")
    add("--bootstrap", type=int, default=500, help="bootstrap resamples over source videos (default: %(default)s)")
    add("--cache", type=Path, default=ROOT / "bench" / "cache", help="generated data and runs (default: bench/cache)")
    add("--out", type=Path, default=ROOT / "bench" / "results_quality.json", help="JSON output (default: %(default)s)")
    add("--plot", type=Path, default=None, help="learning-curve PNG (default: the JSON path with .png)")
    add("--quick", action="store_true", help="one small size (300 clips), 8 epochs, 300 test clips: a few minutes")
    add("--force", action="store_true", help="overwrite existing outputs")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.epochs, args.test_clips, args.val_clips = "300", 8, 300, 150
    return args


def parse_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings -> dict with JSON-decoded values where possible (numbers, true/false)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise PerfexError(f"--train-option {pair!r} must look like KEY=VALUE, e.g. loss=ordinal")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


# ----- metrics -----
def _weighted_mean(values: np.ndarray, w: np.ndarray) -> float:
    return float((values * w).sum() / w.sum())


def _confusion_scores(true: np.ndarray, pred: np.ndarray, w: np.ndarray) -> tuple[float, float, float]:
    """Accuracy, macro-F1 (over levels that occur) and quadratic weighted kappa from a weighted confusion matrix."""
    cm = np.bincount(true * 5 + pred, weights=w, minlength=25).reshape(5, 5)
    total, rows, cols = cm.sum(), cm.sum(axis=1), cm.sum(axis=0)
    present = (rows + cols) > 0
    f1 = (2 * np.diag(cm)[present] / (rows + cols)[present]).mean()
    penalty = (np.arange(5)[:, None] - np.arange(5)[None, :]) ** 2
    expected = np.outer(rows, cols) / total
    denominator = (penalty * expected).sum()
    qwk = 1 - (penalty * cm).sum() / denominator if denominator > 0 else 0.0
    return float(np.trace(cm) / total), float(f1), float(qwk)


def _ccc(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Lin's concordance correlation coefficient (weighted)."""
    mx, my = _weighted_mean(x, w), _weighted_mean(y, w)
    vx, vy = _weighted_mean((x - mx) ** 2, w), _weighted_mean((y - my) ** 2, w)
    return float(2 * _weighted_mean((x - mx) * (y - my), w) / (vx + vy + (mx - my) ** 2 + 1e-12))


def metric_values(levels: np.ndarray, probs: np.ndarray, w: np.ndarray) -> dict:
    """Every METRICS value, averaged over traits, with clip weights ``w``."""
    pred, predicted_score = probs.argmax(axis=-1), probs @ np.arange(5.0) / 4
    rows = []
    for t in range(5):
        accuracy, f1, qwk = _confusion_scores(levels[:, t], pred[:, t], w)
        gap = np.abs(pred[:, t] - levels[:, t])
        rows.append([accuracy, f1, qwk, _weighted_mean(gap <= 1, w), _weighted_mean(gap, w),
                     1 - _weighted_mean(np.abs(predicted_score[:, t] - levels[:, t] / 4), w),
                     _ccc(predicted_score[:, t], levels[:, t] / 4, w)])
    return dict(zip(METRICS, np.mean(rows, axis=0).tolist()))


def seed_mean_values(levels: np.ndarray, runs: list[np.ndarray], w: np.ndarray) -> dict:
    """``metric_values`` averaged over the runs (one probability array per training seed)."""
    values = [metric_values(levels, probs, w) for probs in runs]
    return {m: float(np.mean([v[m] for v in values])) for m in METRICS}


def bootstrap_table(levels: np.ndarray, runs: list[np.ndarray], groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """``{metric: [value, low, high]}`` of the mean over ``runs``: 95% percentile intervals resampling whole source
    videos (each draw scores every run on the same resample)."""
    _, unit = np.unique(groups, return_inverse=True)
    n_units = unit.max() + 1
    rng = np.random.default_rng(seed)
    point = seed_mean_values(levels, runs, np.ones(len(levels)))
    draws = [seed_mean_values(levels, runs, rng.multinomial(n_units, np.full(n_units, 1 / n_units))[unit].astype(float))
             for _ in range(n_boot)]
    return {m: [point[m], *np.percentile([d[m] for d in draws], [2.5, 97.5]).tolist()] for m in METRICS}


def per_trait_scores(levels: np.ndarray, runs: list[np.ndarray]) -> dict:
    """Accuracy, Pearson r (expected level vs true level) and QWK of each trait, averaged over the runs."""
    out = {}
    for t, trait in enumerate(TRAITS):
        scores = []
        for probs in runs:
            predicted = probs[:, t] @ np.arange(5.0)
            accuracy, _, qwk = _confusion_scores(levels[:, t], probs[:, t].argmax(-1), np.ones(len(levels)))
            scores.append([accuracy, np.corrcoef(predicted, levels[:, t])[0, 1] if predicted.std() > 1e-9 else 0.0, qwk])
        out[trait] = dict(zip(("accuracy", "pearson_r", "qwk"), np.mean(scores, axis=0).tolist()))
    return out


def training_seeds(args: argparse.Namespace, options: dict) -> list[int]:
    """The networks' training seeds: ``--train-seeds``, else the one seed ``--seed`` (or ``--train-option seed=N``)."""
    if args.train_seeds is None:
        return [options.get("seed", args.seed)]
    if "seed" in options:
        raise PerfexError("give the training seed either as --train-seeds or as --train-option seed=N, not both")
    try:
        seeds = [int(s) for s in args.train_seeds.split(",")]
    except ValueError:
        raise PerfexError(f"--train-seeds {args.train_seeds!r} must be comma-separated integers, e.g. 0,1,2") from None
    if len(set(seeds)) != len(seeds):
        raise PerfexError(f"--train-seeds {args.train_seeds!r} repeats a seed")
    return seeds


def seed_options(options: dict, seed: int, data_seed: int) -> dict:
    """The trainer options for one training seed (the data seed is the trainer's default, so it adds nothing)."""
    return {**options, "seed": seed} if seed != data_seed else {k: v for k, v in options.items() if k != "seed"}


def run_size(kind: str, size: int, args: argparse.Namespace, options: dict) -> dict:
    """Every system on one training size of one data kind: metrics with intervals (and per-trait r/QWK)."""
    sets = load_sets(kind, size, args)
    seeds = training_seeds(args, options)
    results = {}
    for system in args.systems.split(","):
        if system in PEERS and not aeon_available():
            print(f"  {kind} n={size} {system}: skipped, aeon is not installed (pip install aeon, or leave it out of --systems)")
            continue
        started = time.perf_counter()
        extra: dict = {}
        test = sets["test"]
        if system in NON_NETWORKS:
            runs, name = [NON_NETWORKS[system](sets, args.seed)], system
        else:
            trained = {seed: train_network(system, sets, args, seed_options(options, seed, args.seed)) for seed in seeds}
            runs, name = [probs for probs, _ in trained.values()], system + args.tag
            extra = {"calibration": next(iter(trained.values()))[1]} if len(seeds) == 1 else {
                "calibration": {str(seed): calibration for seed, (_, calibration) in trained.items()},
                "per_seed": {str(seed): metric_values(test.levels, probs, np.ones(len(test))) for seed, (probs, _) in trained.items()}}
        results[name] = {"n_train": len(sets["train"]), "metrics": bootstrap_table(test.levels, runs, sets["test_groups"], args.bootstrap, args.seed),
                         "per_trait": per_trait_scores(test.levels, runs), "seconds": round(time.perf_counter() - started, 1),
                         **({"training_seeds": seeds} if system not in NON_NETWORKS else {}), **extra}
        per_seed = "".join(f"; seed {seed} {v['accuracy']:.3f}/{v['qwk']:.3f}" for seed, v in results[name].get("per_seed", {}).items())
        print(f"  {kind} n={size} {name}: acc {results[name]['metrics']['accuracy'][0]:.3f} "
              f"qwk {results[name]['metrics']['qwk'][0]:.3f}{' (mean over seeds' + per_seed + ')' if per_seed else ''} "
              f"({results[name]['seconds']} s)", flush=True)
    return results


def trait_label(trait: str, roles: dict | None) -> str:
    """``trait [role xstrength]`` where the data kind assigns roles, else the bare trait name."""
    if roles is None:
        return trait
    role, strength = roles[trait]
    return f"{trait} [{role}{'' if role == 'none' else f' x{strength:.2f}'}]"


def per_trait_lines(results: dict, roles: dict | None) -> list[str]:
    """One row per system: each trait's accuracy, Pearson r and QWK under a header naming each trait's role."""
    lines = ["per trait: accuracy / Pearson r / QWK", f"{'system':<18}" + "".join(f"{trait_label(t, roles):>38}" for t in TRAITS)]
    for name, result in results.items():
        cells = (result["per_trait"][t] for t in TRAITS)
        lines.append(f"{name:<18}" + "".join(f"{c['accuracy']:>26.3f} {c['pearson_r']:+.2f} {c['qwk']:+.2f}" for c in cells))
    return lines


def trait_checks(results: dict, roles: dict) -> dict:
    """Per trait: the target a network must meet and whether each network meets it. Timing-linked traits: Pearson r
    >= max(TIMING_R_FLOOR, the better peer's r); statistics-only and unlinked traits: accuracy >= logreg's - ACCURACY_MARGIN."""
    networks = [name for name, result in results.items() if "training_seeds" in result]
    peers = [name for name in results if name in PEERS]
    checks = {}
    for trait, (role, strength) in roles.items():
        scores = {name: result["per_trait"][trait] for name, result in results.items()}
        if role == "timing":
            best = max(peers, key=lambda name: scores[name]["pearson_r"], default=None)
            above_floor = best is not None and scores[best]["pearson_r"] > TIMING_R_FLOOR
            floor = f"floor {TIMING_R_FLOOR}" + ("" if peers else "; no peer in this table")
            metric, reference = "pearson_r", best if above_floor else floor
            target = scores[best]["pearson_r"] if above_floor else TIMING_R_FLOOR
        else:
            metric, reference = "accuracy", "logreg" if "logreg" in scores else "logreg not run"
            target = scores["logreg"]["accuracy"] - ACCURACY_MARGIN if "logreg" in scores else None
        met = {name: bool(scores[name][metric] >= target) for name in networks} if target is not None else {}
        checks[trait] = {"role": role, "strength": strength, "metric": metric, "target": target, "reference": reference,
                         "networks": {name: {"value": scores[name][metric], "met": met[name]} for name in met}}
    return checks


def check_lines(checks: dict) -> list[str]:
    """The targets of ``trait_checks``, one line per trait, and one line naming the networks that meet them all."""
    lines = [f"targets: timing traits r >= max({TIMING_R_FLOOR}, the better peer's r); statistics and none traits accuracy "
             f">= logreg - {ACCURACY_MARGIN}"]
    networks: dict[str, bool] = {}
    for trait, check in checks.items():
        label = trait_label(trait, {trait: (check["role"], check["strength"])})
        symbol = "r" if check["metric"] == "pearson_r" else "accuracy"
        target = "no target" if check["target"] is None else f"{symbol} >= {check['target']:.3f}"
        verdicts = ", ".join(f"{name} {v['value']:.3f} {'yes' if v['met'] else 'NO'}" for name, v in check["networks"].items())
        missing = "no networks in this table" if check["target"] is not None else "no verdict without logreg"
        lines.append(f"  {label}: {target} ({check['reference']}); {verdicts or missing}")
        for name, v in check["networks"].items():
            networks[name] = networks.get(name, True) and v["met"]
    if networks:
        lines.append("  every target met by: " + (", ".join(n for n, ok in networks.items() if ok) or "no network")
                     + "; missing some: " + (", ".join(n for n, ok in networks.items() if not ok) or "none"))
    return lines


def print_table(kind: str, size: int, results: dict, roles: dict | None, checks: dict | None) -> None:
    seeds = next((r["training_seeds"] for r in results.values() if len(r.get("training_seeds", [])) > 1), None)
    over_seeds = f"; networks: mean over training seeds {','.join(map(str, seeds))}" if seeds else ""
    print(f"\n{kind} data, {size} training clips (synthetic; value [95% interval over source videos]{over_seeds})")
    print(f"{'system':<18}" + "".join(f"{m:>22}" for m in METRICS) + f"{'seconds':>10}")
    for name, result in results.items():
        cells = "".join(f"{v:>8.3f} [{lo:.3f},{hi:.3f}]" for v, lo, hi in (result["metrics"][m] for m in METRICS))
        print(f"{name:<18}{cells}{result['seconds']:>10.1f}")
    print("\n".join(per_trait_lines(results, roles) + (check_lines(checks) if checks else [])))


def plot_curves(report: dict, path: Path) -> Path:
    """Mean accuracy and QWK against training size, one line per system, one row per data kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(report["results"])
    figure, axes = plt.subplots(len(kinds), 2, figsize=(10, 3.8 * len(kinds)), squeeze=False)
    for row, kind in enumerate(kinds):
        sizes = sorted(report["results"][kind], key=int)
        systems = list(report["results"][kind][sizes[0]])
        for column, metric in enumerate(("accuracy", "qwk")):
            axis = axes[row, column]
            for system in systems:
                runs = [report["results"][kind][s][system] for s in sizes if system in report["results"][kind][s]]
                values = [run["metrics"][metric] for run in runs]
                n_seeds = len(runs[0].get("training_seeds", []))
                label = f"{system} (mean of {n_seeds} seeds)" if n_seeds > 1 else system
                axis.errorbar([int(s) for s in sizes][: len(values)], [v[0] for v in values],
                              yerr=[[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]], marker="o", capsize=3,
                              label=f"{label}: reference" if system == "planted" else label,
                              **({"linestyle": "--", "color": "0.45"} if system == "planted" else {}))
            axis.set(xscale="log", xlabel="training clips", ylabel=metric, title=f"{kind} data (synthetic): {metric}")
            axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        options = parse_options(args.train_option)
        plot = args.plot or args.out.with_suffix(".png")
        for path in (args.out, plot):
            if path.exists() and not args.force:
                raise PerfexError(f"{path} exists; pass --force to overwrite it or choose another --out/--plot")
        report = {"config": {k: str(v) for k, v in vars(args).items()}, "train_options": options, "results": {},
                  "roles": {}, "checks": {}}
        for kind in parse_kinds(args.kinds):
            roles = trait_roles(kind, args.seed)
            if roles is not None:
                report["roles"][kind] = roles
            for size in (int(s) for s in args.sizes.split(",")):
                results = run_size(kind, size, args, options)
                report["results"].setdefault(kind, {})[str(size)] = results
                checks = trait_checks(results, roles) if roles is not None else None
                if checks is not None:
                    report["checks"].setdefault(kind, {})[str(size)] = checks
                print_table(kind, size, results, roles, checks)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.out} and {plot_curves(report, plot)}")
    except PerfexError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
