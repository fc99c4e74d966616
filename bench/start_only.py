"""The statistics start alone (synthetic data): what ``start_from_statistics`` reads before any deep training.

On the quality benchmark's data (``bench/quality.py``: the same cached pools, training clips and test clips) it fits
the start twice, with and without the timing score, and scores the start's logits on the test clips: per trait
Pearson r (expected level against the true level) and accuracy, the targets that read the score, and the time the
start took. Seconds per kind, so variants of the start can be compared without training a network.

    python bench/start_only.py --kinds timing,mixed,documented --size 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import quality  # noqa: E402
from models import create_model  # noqa: E402
from models.wide import KERNEL_FEATURES  # noqa: E402
from perfex.train.losses import level_probabilities  # noqa: E402
from perfex.train.statistics_init import start_from_statistics  # noqa: E402
from perfex.train.timing_score import timing_score_readers  # noqa: E402


def fitted_start(sets: dict, kernel_features: int, seed: int, kernel_taps: str = "mean") -> tuple[torch.nn.Module, float]:
    """A CORN model whose statistics start is fitted on the training clips (deep path silent), and the seconds it took."""
    train = sets["train"]
    frames = train.features
    std = frames.std(axis=0)
    model = create_model("cnn", n_features=train.n_features, output="corn", kernel_features=kernel_features,
                         kernel_taps=kernel_taps)
    model.set_normalization(frames.mean(axis=0), np.where(std > 1e-6, std, 1.0))
    started = time.perf_counter()
    torch.manual_seed(seed)
    start_from_statistics(model, train, np.arange(len(train)), seed)
    return model.eval(), time.perf_counter() - started


def test_probabilities(model: torch.nn.Module, sets: dict) -> np.ndarray:
    """Level probabilities [N, traits, levels] of the test clips."""
    return level_probabilities(torch.from_numpy(quality.network_logits(model, sets["test"])), "ordinal").numpy()


def start_probabilities(sets: dict, kernel_features: int, seed: int, kernel_taps: str = "mean") -> np.ndarray:
    """The start's level probabilities on the test clips (``fitted_start``)."""
    return test_probabilities(fitted_start(sets, kernel_features, seed, kernel_taps)[0], sets)


def start_scores(sets: dict, kernel_features: int, seed: int) -> dict:
    """Fit the start on the training clips; per trait r and accuracy of its test predictions, readers and seconds."""
    model, seconds = fitted_start(sets, kernel_features, seed)
    traits = quality.per_trait_scores(sets["test"].levels, [test_probabilities(model, sets)])
    return {"seconds": round(seconds, 1), "readers": timing_score_readers(model),
            "r": [round(traits[t]["pearson_r"], 3) for t in quality.TRAITS],
            "accuracy": [round(traits[t]["accuracy"], 3) for t in quality.TRAITS]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="timing,mixed,documented", help="data kinds (default: %(default)s)")
    parser.add_argument("--size", type=int, default=1000, help="training clips (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="data seed, as in bench/quality.py (default: %(default)s)")
    parser.add_argument("--without", action="store_true", help="also fit the start without the timing score")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    bench = quality.parse_args(["--sizes", str(args.size), "--seed", str(args.seed)])
    results = {}
    for kind in quality.parse_kinds(args.kinds):
        sets = quality.load_sets(kind, args.size, bench)
        roles = quality.trait_roles(kind, args.seed)
        print(f"{kind} (roles: {', '.join(f'{t[:3]} {r[0]}' for t, r in roles.items()) if roles else 'documented'})")
        for name, kernels in ([("statistics", 0)] if args.without else []) + [("timing score", KERNEL_FEATURES)]:
            scores = start_scores(sets, kernels, args.seed)
            results[f"{kind}/{name}"] = scores
            print(f"  {name:12s} r {' / '.join(f'{v:.2f}' for v in scores['r'])}   accuracy "
                  f"{' / '.join(f'{v:.3f}' for v in scores['accuracy'])}   reads the score: "
                  f"{', '.join(r[:3] for r in scores['readers']) or 'none'}   ({scores['seconds']} s)", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
