"""PerFeX benchmark: loading, training and deploy throughput, memory, and FLOP/s against this machine's matmul.

Generates PerFeX-format data with the project's generator (cached under --cache), measures everything in one
run, prints a table with each target marked PASS or FAIL, and writes the raw numbers as JSON.

    python bench/bench.py                # default size: about 5-10 minutes on 2 CPU cores
    python bench/bench.py --full         # 10,000 clips (the size of the real PerFeX set)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ORIGINAL_LOAD_ROWS_PER_S = 290_000 / 2.5  # the original loader: 1,000 clips, 290 k rows in 2.5 s on this kind of machine
ORIGINAL_TRAIN_CLIPS_PER_S = {"cnn": 66.0, "attn": 4.9}  # the original code at batch 1, measured separately


def _status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter (Linux >= 4.0) so imports don't count; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(queue: mp.Queue, name: str, kwargs: dict) -> None:
    """Run one measurement in a fresh process so peak memory is its own."""
    try:
        sys.path.insert(0, str(REPO))
        import numpy  # noqa: F401  (imports count as baseline, not as the measurement)
        import pyarrow.csv  # noqa: F401

        import perfex.deploy  # noqa: F401
        import perfex.readers  # noqa: F401

        import torch  # noqa: F401

        baseline = (_status_mb("VmRSS") if reset_peak_rss() else None) or peak_rss_mb()
        result = MEASUREMENTS[name](**kwargs)
        result["peak_rss_mb"] = peak_rss_mb() - baseline
        result["baseline_rss_mb"] = baseline
        queue.put(result)
    except Exception as err:  # report, don't hang the parent
        queue.put({"error": f"{type(err).__name__}: {err}"})


def isolated(name: str, **kwargs) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, name, kwargs))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"{name}: {result['error']}")
    return result


def bare_read(path: str) -> dict:
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    table = pacsv.read_csv(path)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": table.num_rows, "columns": table.num_columns}


def load(path: str, cache_dir: str | None = None) -> dict:
    from perfex.readers import load_clips

    started = time.perf_counter()
    clips = load_clips([path], cache_dir=cache_dir)
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "rows": int(clips.offsets[-1]), "clips": len(clips), "au_matrix_mb": clips.features.nbytes / 2**20}
    if cache_dir:
        result["cached_seconds"] = min(_timed(lambda: load_clips([path], cache_dir=cache_dir)) for _ in range(3))
    return result


def deploy_run(weights: str, family: str, path: str, out: str, chunk_rows: int) -> dict:
    import torch

    from perfex.deploy import DeployConfig, deploy

    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    summary = deploy(DeployConfig(weights=weights, data=[path], out=out, force=True, device="cpu", chunk_rows=chunk_rows,
                                  progress=False, batch_size=64), family)
    return {"seconds": time.perf_counter() - started, "clips": summary["clips_written"]}


MEASUREMENTS = {"bare_read": bare_read, "load": load, "deploy": deploy_run}


def dataset(cache: Path, clips: int, seed: int, labeled: bool = True) -> Path:
    """A cached PerFeX CSV of ``clips`` clips of 300-600 frames (mean ~450, as First Impressions)."""
    from perfex.synth import generate_perfex, write_table

    path = cache / f"perfex_{clips}clips_seed{seed}{'' if labeled else '_unlabeled'}.csv"
    if not path.exists():
        print(f"generating {path.name} ...", flush=True)
        write_table(generate_perfex(clips, seed=seed, min_frames=300, max_frames=600, labeled=labeled, progress=True), path)
    return path


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def training_throughput(family: str, clips, n_clips: int, batch_size: int, pad_to: int | None) -> dict:
    """Clips/s of forward + backward + AdamW step over ``n_clips`` clips, as the engine batches them."""
    import numpy as np
    import torch

    from models import create_model
    from perfex.batches import collate, training_batches
    from perfex.train import trait_loss

    torch.manual_seed(0)
    model = create_model(family)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    plan = training_batches(clips, np.arange(n_clips), batch_size, 700, np.random.default_rng(0), pad_to=pad_to)
    warm = collate(clips, *plan[0], pad_to=pad_to)
    trait_loss(model(warm.x, warm.lengths, warm.times), warm.levels).backward()
    optimizer.zero_grad()
    frames = 0
    started = time.perf_counter()
    for batch_plan in plan:
        batch = collate(clips, *batch_plan, pad_to=pad_to)
        loss = trait_loss(model(batch.x, batch.lengths, batch.times), batch.levels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        frames += int(batch.lengths.sum())
    seconds = time.perf_counter() - started
    useful = 3 * model.flops_per_frame() * frames
    return {"clips_per_s": n_clips / seconds, "seconds": seconds, "clips": n_clips, "batch_size": batch_size,
            "padded_to": pad_to, "useful_gflops_per_s": useful / seconds / 1e9}


def inference_throughput(family: str, clips, n_clips: int) -> dict:
    import numpy as np

    from models import create_model
    from perfex.predict import predict_probs

    model = create_model(family).eval()
    index = np.arange(n_clips)
    predict_probs(model, clips, index[:8])
    started = time.perf_counter()
    predict_probs(model, clips, index, batch_size=64)
    seconds = time.perf_counter() - started
    frames = int(clips.lengths[:n_clips].sum())
    return {"clips_per_s": n_clips / seconds, "useful_gflops_per_s": model.flops_per_frame() * frames / seconds / 1e9}


def save_untrained(family: str, path: Path, clips) -> str:
    from models import config_to_dict, create_model
    from perfex.checkpoint import save_checkpoint
    from perfex.schema import AU_INTENSITY_COLUMNS

    model = create_model(family)
    model.set_normalization(clips.features.mean(axis=0), clips.features.std(axis=0) + 1e-6)
    save_checkpoint(model, path, {"model": family, "model_config": config_to_dict(model),
                                  "feature_names": list(AU_INTENSITY_COLUMNS), "label_binning": "grid"})
    return str(path)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=1000, help="clips in the main file (default 1000, ~450 k rows)")
    parser.add_argument("--full", action="store_true", help="10,000 clips, the size of the real PerFeX set")
    parser.add_argument("--train-clips", type=int, default=256, help="clips per training-throughput measurement")
    parser.add_argument("--models", default="cnn,attn", help="models to measure (default: cnn,attn)")
    parser.add_argument("--cache", type=Path, default=REPO / "bench" / "cache", help="where generated data is kept")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json", help="JSON with every raw number")
    args = parser.parse_args(argv)
    import torch

    clips_n = 10_000 if args.full else args.clips
    families = [f for f in args.models.split(",") if f]
    args.cache.mkdir(parents=True, exist_ok=True)
    main_file = dataset(args.cache, clips_n, 0)
    deploy_small, deploy_big = dataset(args.cache, clips_n, 2, labeled=False), dataset(args.cache, 10 * clips_n, 3, labeled=False)
    results: dict = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                                 "python": platform.python_version(), "processor": platform.processor() or platform.machine()},
                     "clips": clips_n}
    rows: list[tuple[str, str, str]] = []

    # 4. roofline first, on a quiet machine
    gflops = matmul_gflops()
    results["matmul_gflops"] = gflops
    rows.append(("fp32 2048x2048 matmul", f"{gflops:.0f} GFLOP/s", "roofline for the FLOP/s fractions"))

    # 1. load + validate + group
    bare = isolated("bare_read", path=str(main_file))
    parse_cache = Path(tempfile.mkdtemp(prefix="parsed-", dir=args.cache))  # empty: the first load really parses
    loaded = isolated("load", path=str(main_file), cache_dir=str(parse_cache))
    one_x, ten_x = isolated("load", path=str(deploy_small)), isolated("load", path=str(deploy_big))
    bare_1x, bare_10x = isolated("bare_read", path=str(deploy_small)), isolated("bare_read", path=str(deploy_big))
    bare_time_ratio = bare_10x["seconds"] / bare_1x["seconds"]
    bare_rate, load_rate = bare["rows"] / bare["seconds"], loaded["rows"] / loaded["seconds"]
    rows_ratio = ten_x["rows"] / one_x["rows"]
    time_ratio = ten_x["seconds"] / one_x["seconds"]
    cache_speedup = loaded["seconds"] / loaded["cached_seconds"]
    memory_limit = 3 * loaded["au_matrix_mb"] + bare["peak_rss_mb"]
    results["load"] = {"bare_read": bare, "load": loaded, "load_1x": one_x, "load_10x": ten_x, "bare_read_1x": bare_1x,
                       "bare_read_10x": bare_10x, "bare_time_ratio": bare_time_ratio, "rows_ratio": rows_ratio,
                       "time_ratio": time_ratio, "cache_speedup": cache_speedup, "memory_limit_mb": memory_limit}
    rows += [
        ("bare pyarrow read", f"{bare_rate / 1e6:.2f} M rows/s, {bare['seconds']:.2f} s, {bare['peak_rss_mb']:.0f} MB", f"{bare['columns']} columns"),
        ("load + validate + group", f"{load_rate / 1e6:.2f} M rows/s ({load_rate / bare_rate:.0%} of bare read)",
         f"{verdict(load_rate >= 0.8 * bare_rate)} target >= 80%; original ~{ORIGINAL_LOAD_ROWS_PER_S / 1e3:.0f} k rows/s"),
        ("  linearity", f"{one_x['rows'] / 1e6:.2f} M -> {ten_x['rows'] / 1e6:.2f} M rows: {time_ratio:.1f}x time", f"{verdict(time_ratio <= 1.1 * rows_ratio)} target <= 1.1x rows ratio; bare pyarrow read: {bare_time_ratio:.1f}x"),
        ("  cached second load (best of 3)", f"{loaded['cached_seconds'] * 1e3:.0f} ms ({cache_speedup:.0f}x faster)", f"{verdict(cache_speedup >= 10)} target >= 10x"),
        ("  peak RSS", f"{loaded['peak_rss_mb']:.0f} MB (AU matrix {loaded['au_matrix_mb']:.0f} MB, "
         f"{loaded['peak_rss_mb'] / loaded['au_matrix_mb']:.1f}x)", f"{verdict(loaded['peak_rss_mb'] <= memory_limit)} target <= 3x AU + parse = {memory_limit:.0f} MB"),
    ]

    # 2. training throughput, and 4. FLOP/s fractions
    from perfex.readers import load_clips

    clips = load_clips([main_file], cache_dir=str(parse_cache))
    shutil.rmtree(parse_cache)
    results["train"], results["inference"] = {}, {}
    for family in families:
        batched = training_throughput(family, clips, min(args.train_clips, len(clips)), 32, None)
        single = training_throughput(family, clips, min(32 if family == "cnn" else 16, len(clips)), 1, 700)
        inference = inference_throughput(family, clips, min(4 * args.train_clips, len(clips)))
        ratio = batched["clips_per_s"] / single["clips_per_s"]
        results["train"][family] = {"batch32": batched, "batch1_padded700": single, "ratio": ratio}
        results["inference"][family] = inference
        train_fraction, infer_fraction = batched["useful_gflops_per_s"] / gflops, inference["useful_gflops_per_s"] / gflops
        target = f"{verdict(ratio >= 5)} target >= 5x" if family == "attn" else "reference"
        rows += [
            (f"train {family} batch 32", f"{batched['clips_per_s']:.1f} clips/s ({train_fraction:.0%} of matmul)",
             f"{verdict(train_fraction >= 0.4)} target >= 40%" if family == "cnn" else "useful FLOP/s over real frames"),
            (f"train {family} batch 1, pad 700", f"{single['clips_per_s']:.1f} clips/s -> ratio {ratio:.1f}x",
             f"{target}; original code {ORIGINAL_TRAIN_CLIPS_PER_S[family]} clips/s"),
            (f"inference {family}", f"{inference['clips_per_s']:.0f} clips/s ({infer_fraction:.0%} of matmul)",
             f"{verdict(infer_fraction >= 0.4)} target >= 40%" if family == "cnn" else "useful FLOP/s over real frames"),
        ]

    # 3. deploy end to end, and 10x the input
    results["deploy"] = {}
    chunk_rows = 200_000
    for family in families:
        weights = save_untrained(family, args.cache / f"untrained_{family}.safetensors", clips)
        one = isolated("deploy", weights=weights, family=family, path=str(deploy_small), out=str(args.cache / f"out_{family}.csv"), chunk_rows=chunk_rows)
        ten = isolated("deploy", weights=weights, family=family, path=str(deploy_big), out=str(args.cache / f"out_{family}_10x.csv"), chunk_rows=chunk_rows)
        rows_small = loaded["rows"]
        original_load_seconds = rows_small / ORIGINAL_LOAD_ROWS_PER_S
        growth = ten["peak_rss_mb"] / one["peak_rss_mb"]
        results["deploy"][family] = {"input": one, "input_10x": ten, "memory_growth": growth, "original_load_seconds": original_load_seconds}
        rows += [
            (f"deploy {family} {one['clips']} clips", f"{one['clips'] / one['seconds']:.0f} clips/s, {one['seconds']:.1f} s, {one['peak_rss_mb']:.0f} MB",
             f"{verdict(one['seconds'] < original_load_seconds)} target < {original_load_seconds:.1f} s (original load+group alone)"),
            (f"deploy {family} {ten['clips']} clips (10x)", f"{ten['clips'] / ten['seconds']:.0f} clips/s, {ten['peak_rss_mb']:.0f} MB ({growth:.2f}x memory)",
             f"{verdict(growth < 2)} target memory < 2x"),
        ]

    width = max(len(r[0]) for r in rows)
    print(f"\nPerFeX benchmark: {clips_n} clips, {results['machine']['cpus']} CPUs, torch {torch.__version__}\n")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<58}  {note}")
    results["table"] = rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nraw numbers -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
