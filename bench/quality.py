"""Quality benchmark (synthetic data): learning curves of the networks against simple baselines on the same clips.

For each data kind (``documented``: the generator's documented links; ``timing``: traits that change only the
order, co-occurrence and regularity of events, invisible to per-clip means/stds) it generates (cached) a training
pool and a separate, source-video-disjoint test set, trains every system at each training size and prints one table
per size with bootstrap 95% intervals over source videos. Writes JSON and a learning-curve PNG. Synthetic data only.

    python bench/quality.py --quick
    python bench/quality.py --sizes 1000,3000 --kinds documented,timing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from perfex.calibration import apply_temperatures, calibration_report, fit_temperatures, reliability_diagram  # noqa: E402
from perfex.clips import ClipSet  # noqa: E402
from perfex.errors import PerfexError  # noqa: E402
from perfex.metrics import clip_summary_features  # noqa: E402
from perfex.readers import load_clips  # noqa: E402
from perfex.losses import level_probabilities  # noqa: E402
from perfex.schema import TRAITS  # noqa: E402
from perfex.splits import group_keys  # noqa: E402
from perfex.synth import generate_perfex, write_table  # noqa: E402

METRICS = ("accuracy", "f1_macro", "qwk", "off_by_one", "mae_levels", "one_minus_mae", "ccc")
POOL_VAL_CAPACITY = 300


# ----- data -----
def cached_table(cache: Path, kind: str, n_clips: int, seed: int, spread: float, id_start: int) -> Path:
    """Generate (once) a labelled PerFeX file of ``n_clips`` realistic-length clips (300-460 frames)."""
    path = cache / f"{kind}_spread{spread:g}_seed{seed}_n{n_clips}.csv.gz"
    if not path.exists():
        print(f"generating {path.name} ...", flush=True)
        frame = generate_perfex(n_clips, seed, spread=spread, min_frames=300, max_frames=460, id_start=id_start, variant=kind)
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
    if kind not in ("documented", "timing"):
        raise PerfexError(f"unknown data kind {kind!r}; choose documented or timing")
    if args.val_clips > POOL_VAL_CAPACITY:
        raise PerfexError(f"--val-clips {args.val_clips} exceeds the pool's {POOL_VAL_CAPACITY} validation clips")
    max_size = max(3000, *(int(s) for s in args.sizes.split(",")))
    pool_path = cached_table(args.cache, kind, max_size + POOL_VAL_CAPACITY, args.seed, args.spread, 0)
    test_path = cached_table(args.cache, kind, args.test_clips, args.seed + 1000, args.spread, 10_000_000)
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


def _per_trait_classifier(make, sets: dict, evaluate: str = "test") -> np.ndarray:
    """Fit one classifier per trait on the training clips' AU mean/std; level probabilities [N, 5, 5] on ``evaluate``."""
    x_train, x_eval = clip_summary_features(sets["train"]), clip_summary_features(sets[evaluate])
    probs = np.zeros((len(x_eval), 5, 5))
    for t in range(5):
        model = make().fit(x_train, sets["train"].levels[:, t])
        probs[:, t, model.classes_] = model.predict_proba(x_eval)
    return probs


def logreg(sets: dict, seed: int) -> np.ndarray:
    """Standardised AU mean/std -> multinomial logistic regression (C picked by validation log-loss)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def make(c: float):
        return lambda: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))

    best = min((0.01, 0.1, 1.0), key=lambda c: calibration_report(_per_trait_classifier(make(c), sets, "val"), sets["val"].levels)["nll"])
    return _per_trait_classifier(make(best), sets)


def hgb(sets: dict, seed: int) -> np.ndarray:
    """Histogram gradient boosting on AU mean/std: 150 shallow trees at rate 0.05 (fixed; rare levels defeat early stopping)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _per_trait_classifier(lambda: HistGradientBoostingClassifier(learning_rate=0.05, max_iter=150, max_depth=3, min_samples_leaf=20,
                                                                        early_stopping=False, random_state=seed), sets)


BASELINES = {"majority": majority, "train_mean": train_mean, "logreg": logreg, "hgb": hgb}


# ----- networks -----
def train_with_engine(family: str, pool_path: Path, manifest_path: Path, run_dir: Path, epochs: int, seed: int, options: dict) -> Path:
    """THE one call into the training engine; returns the selected checkpoint. Adapt here when the trainer changes."""
    from perfex.options import TrainConfig, build_config
    from perfex.train import fit

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


def train_network(family: str, sets: dict, args: argparse.Namespace, options: dict) -> tuple[np.ndarray, dict]:
    """Train through the engine (cached per setting), predict the test clips; temperatures fitted on validation."""
    from perfex.checkpoint import load_checkpoint

    setting = json.dumps([sets["kind"], sets["size"], family, args.tag, args.epochs, args.seed, args.spread, args.val_clips, options])
    run_dir = args.cache / "runs" / f"{sets['kind']}_{sets['size']}_{family}{args.tag}_{hashlib.sha1(setting.encode()).hexdigest()[:8]}"
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
    add("--kinds", default="documented,timing", help="data kinds, comma-separated: documented, timing (default: %(default)s)")
    add("--sizes", default="300,1000,3000", help="training-set sizes in clips (default: %(default)s)")
    add("--test-clips", type=int, default=1000, help="clips in the separate test set (default: %(default)s)")
    add("--val-clips", type=int, default=300, help="validation clips (source-disjoint, from the pool) (default: %(default)s)")
    add("--spread", type=float, default=1.0, help="trait spread: 1 = First Impressions-like labels, 2-3 easier (default: %(default)s)")
    add("--seed", type=int, default=0, help="data and training seed (default: %(default)s)")
    add("--systems", default="majority,train_mean,logreg,hgb,cnn,attn",
        help="systems to run (default: %(default)s); networks: any registry name")
    add("--epochs", type=int, default=30, help="network training epochs (default: %(default)s)")
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


def bootstrap_table(levels: np.ndarray, probs: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> dict:
    """``{metric: [value, low, high]}``: 95% percentile intervals resampling whole source videos."""
    _, unit = np.unique(groups, return_inverse=True)
    n_units = unit.max() + 1
    rng = np.random.default_rng(seed)
    point = metric_values(levels, probs, np.ones(len(levels)))
    draws = [metric_values(levels, probs, rng.multinomial(n_units, np.full(n_units, 1 / n_units))[unit].astype(float))
             for _ in range(n_boot)]
    return {m: [point[m], *np.percentile([d[m] for d in draws], [2.5, 97.5]).tolist()] for m in METRICS}


def per_trait_scores(levels: np.ndarray, probs: np.ndarray) -> dict:
    """Pearson r (expected score vs true level) and QWK of each trait."""
    predicted = probs @ np.arange(5.0)
    out = {}
    for t, trait in enumerate(TRAITS):
        r = np.corrcoef(predicted[:, t], levels[:, t])[0, 1] if predicted[:, t].std() > 1e-9 else 0.0
        out[trait] = {"pearson_r": float(r), "qwk": _confusion_scores(levels[:, t], probs[:, t].argmax(-1), np.ones(len(levels)))[2]}
    return out


def run_size(kind: str, size: int, args: argparse.Namespace, options: dict) -> dict:
    """Every system on one training size of one data kind: metrics with intervals (and per-trait r/QWK)."""
    sets = load_sets(kind, size, args)
    results = {}
    for system in args.systems.split(","):
        started = time.perf_counter()
        extra: dict = {}
        if system in BASELINES:
            probs, name = BASELINES[system](sets, args.seed), system
        else:
            (probs, extra), name = train_network(system, sets, args, options), system + args.tag
        test = sets["test"]
        results[name] = {"n_train": len(sets["train"]), "metrics": bootstrap_table(test.levels, probs, sets["test_groups"], args.bootstrap, args.seed),
                         "per_trait": per_trait_scores(test.levels, probs), "seconds": round(time.perf_counter() - started, 1),
                         **({"calibration": extra} if extra else {})}
        print(f"  {kind} n={size} {name}: acc {results[name]['metrics']['accuracy'][0]:.3f} "
              f"qwk {results[name]['metrics']['qwk'][0]:.3f} ({results[name]['seconds']} s)", flush=True)
    return results


def print_table(kind: str, size: int, results: dict) -> None:
    print(f"\n{kind} data, {size} training clips (synthetic; value [95% interval over source videos])")
    print(f"{'system':<16}" + "".join(f"{m:>22}" for m in METRICS))
    for name, result in results.items():
        cells = "".join(f"{v:>8.3f} [{lo:.3f},{hi:.3f}]" for v, lo, hi in (result["metrics"][m] for m in METRICS))
        print(f"{name:<16}{cells}")
    if kind == "timing":
        print("per planted trait: Pearson r / QWK")
        for name, result in results.items():
            print(f"{name:<16}" + "  ".join(f"{t[:5]} {result['per_trait'][t]['pearson_r']:+.2f}/{result['per_trait'][t]['qwk']:+.2f}"
                                            for t in TRAITS))


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
                values = [report["results"][kind][s][system]["metrics"][metric] for s in sizes if system in report["results"][kind][s]]
                axis.errorbar([int(s) for s in sizes][: len(values)], [v[0] for v in values],
                              yerr=[[v[0] - v[1] for v in values], [v[2] - v[0] for v in values]], marker="o", capsize=3, label=system)
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
        report = {"config": {k: str(v) for k, v in vars(args).items()}, "train_options": options, "results": {}}
        for kind in args.kinds.split(","):
            for size in (int(s) for s in args.sizes.split(",")):
                results = run_size(kind, size, args, options)
                report["results"].setdefault(kind, {})[str(size)] = results
                print_table(kind, size, results)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=1) + "\n")
        print(f"\nwrote {args.out} and {plot_curves(report, plot)}")
    except PerfexError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
