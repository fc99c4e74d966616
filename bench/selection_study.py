"""Which epoch should a run keep? Train once per setting with every epoch's weights kept, score every epoch on the
validation and test clips of bench/quality.py, and report the epoch each selection rule keeps and its test score.

    python bench/selection_study.py --runs documented:1000:cnn:0,documented:3000:attn:0 --epochs 30

Rules: ``qwk`` (highest validation QWK; the start, epoch 0, replaced only beyond one standard error), ``qwk-ratchet``
(every replacement needs that margin), ``loss`` (lowest validation loss) and ``oracle`` (best test QWK, for scale).
A benchmark, not a test: about 2-20 minutes per run on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import quality  # noqa: E402
from models.registry import families  # noqa: E402
from perfex.train import loop as engine  # noqa: E402
from perfex.checkpoint.io import load_checkpoint  # noqa: E402
from perfex.core.metrics import trait_metrics  # noqa: E402
from perfex.data.options import TrainConfig, build_config  # noqa: E402


def keep_every_epoch() -> None:
    """Copy each epoch's last.safetensors (and its JSON) to epoch_NNN.* as the trainer writes it."""
    save = engine.Trainer._save

    def save_and_keep(self, epoch: int, scores: dict, improved: bool, gates: np.ndarray) -> None:
        save(self, epoch, scores, improved, gates)
        for suffix in (".safetensors", ".json"):
            shutil.copy(self.out / f"last{suffix}", self.out / f"epoch_{epoch:03d}{suffix}")

    engine.Trainer._save = save_and_keep


def epoch_scores(run_dir: Path, sets: dict) -> list[dict]:
    """Validation loss (from metrics.csv), validation and test accuracy/QWK of every kept epoch."""
    import pandas as pd

    losses = dict(zip(*pd.read_csv(run_dir / "metrics.csv")[["epoch", "val_loss"]].to_numpy().T))
    rows = []
    for weights in sorted(run_dir.glob("epoch_*.safetensors")):
        model, _ = load_checkpoint(weights)
        row = {"epoch": int(weights.stem.split("_")[1])}
        row["val_loss"] = float(losses[row["epoch"]])
        for part in ("val", "test"):
            logits = torch.from_numpy(quality.network_logits(model, sets[part]))
            probs = model.level_probabilities(logits).numpy()
            metrics = trait_metrics(sets[part].levels, probs)["mean"]
            row[part] = {"accuracy": metrics["accuracy"], "qwk": metrics["qwk"]}
        rows.append(row)
    return rows


def kept_epoch(rows: list[dict], rule: str, margin: float, epochs: int, patience: int) -> int:
    """The epoch a rule keeps among epochs 0..``epochs``, early stopping after ``patience`` epochs without a change."""
    if rule == "oracle":
        return max((r for r in rows if r["epoch"] <= epochs), key=lambda r: r["test"]["qwk"])["epoch"]
    best, kept, since = None, 0, 0
    for row in (r for r in rows if r["epoch"] <= epochs):
        score = -row["val_loss"] if rule == "loss" else row["val"]["qwk"]
        needed = margin if rule == "qwk-ratchet" or (rule == "qwk" and kept == 0) else 0.0
        if best is None or score > best + needed:
            best, kept, since = score, row["epoch"], 0
        else:
            since += 1
        if since >= patience:
            break
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="kind:size:family:seed, comma-separated")
    parser.add_argument("--epochs", type=int, default=30, help="epochs to train (default: %(default)s)")
    parser.add_argument("--report-epochs", default="10,30", help="run lengths to report the rules at (default: %(default)s)")
    parser.add_argument("--patience", type=int, default=15, help="early stopping of the simulated rules (default: %(default)s)")
    parser.add_argument("--margin", type=float, default=0.023, help="the QWK rules' margin (default: %(default)s, one "
                        "bootstrap standard error of validation QWK on 300 clips)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "cache" / "selection", help="run directories")
    args = parser.parse_args(argv)
    runs = [run.split(":") for run in args.runs.split(",")]
    if any(len(parts) != 4 or not (parts[1].isdigit() and parts[3].isdigit()) or parts[2] not in families() for parts in runs):
        parser.error(f"--runs {args.runs!r}: give kind:size:family:seed with family one of "
                     f"{', '.join(families())}, e.g. documented:1000:{families()[0]}:0")
    keep_every_epoch()
    for kind, size, family, seed in runs:
        run = f"{kind}:{size}:{family}:{seed}"
        options = quality.parse_args(["--kinds", kind, "--sizes", "1000,3000"])
        sets = quality.load_sets(kind, int(size), options)
        out = args.out / run.replace(":", "_")
        if not (out / "scores.json").exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            (out / "split.json").write_text(json.dumps(sets["manifest"]))
            engine.fit(build_config(TrainConfig, family, data=[str(sets["pool_path"])], out=str(out / "run"),
                                    split=str(out / "split.json"), epochs=args.epochs, patience=args.epochs + 1,
                                    progress=False, min_frames=40, seed=int(seed)))
            (out / "scores.json").write_text(json.dumps(epoch_scores(out / "run", sets)))
        rows = json.loads((out / "scores.json").read_text())
        for epochs in map(int, args.report_epochs.split(",")):
            cells = []
            for rule in ("qwk", "qwk-ratchet", "loss", "oracle"):
                test = next(r for r in rows if r["epoch"] == kept_epoch(rows, rule, args.margin, epochs, args.patience))
                cells.append(f"{rule} e{test['epoch']} {test['test']['accuracy']:.3f}/{test['test']['qwk']:.3f}")
            print(f"{run} {epochs} epochs: " + " | ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
