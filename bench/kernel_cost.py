"""What the start's timing-score kernels cost at deploy: clips per second of ``predict_probs`` on 1,000 generated
clips (300-460 frames), for each network without kernels and with the default ``KERNEL_FEATURES`` (random
weights; the cost does not depend on them). Best of three passes after a warm-up.

    python bench/kernel_cost.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import create_model  # noqa: E402
from models.wide import KERNEL_FEATURES  # noqa: E402
from perfex.data.readers import load_clips  # noqa: E402
from perfex.data.synth import generate_perfex, write_table  # noqa: E402
from perfex.infer.predict import predict_probs  # noqa: E402

N_CLIPS = 1000
DATA = ROOT / "bench" / "cache" / "kernel_cost_1000.csv.gz"  # generated once


def clips_per_second(model: torch.nn.Module, clips) -> float:
    predict_probs(model, clips, np.arange(100))
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        predict_probs(model, clips, np.arange(len(clips)))
        passes.append(time.perf_counter() - started)
    return len(clips) / min(passes)


def main() -> None:
    if not DATA.exists():
        DATA.parent.mkdir(parents=True, exist_ok=True)
        write_table(generate_perfex(N_CLIPS, seed=1000, min_frames=300, max_frames=460), DATA)
    clips = load_clips(DATA, require_labels=False)
    torch.manual_seed(0)
    for family in ("cnn", "attn"):
        for kernels in (0, KERNEL_FEATURES):
            model = create_model(family, n_features=clips.n_features, kernel_features=kernels).eval()
            if kernels:
                sample = torch.from_numpy(clips.features[: 64 * 300].reshape(64, 300, -1).astype(np.float32))
                model.statistics.kernels.fit_biases(*model.prepare(sample, torch.full((64,), 300)))
            print(f"{family:5s} kernel_features={kernels:5d}: {clips_per_second(model, clips):6.0f} clips/s "
                  f"({torch.get_num_threads()} threads)", flush=True)


if __name__ == "__main__":
    main()
