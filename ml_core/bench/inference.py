"""Classifier benchmark: `python -m ml_core.cli.bench --inference`.

Measures, for a checkpoint (default: the full ResNeXt50 + LSTM detector at 112 px): load time
(file hash, weights, model build), frames per second of the classifier on CPU and on CUDA when available
(one video of --frames crops, and --videos videos batched in one pass), Grad-CAM time, and peak
memory. Without --checkpoint a random-init reference-style file is written to a temp folder:
speed does not depend on the weights' values.
"""

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from ml_core.inference.predictor import Predictor
from ml_core.model.detector import DeepfakeDetector, DetectorConfig


def get_args_parser():
    parser = argparse.ArgumentParser(
        prog="python -m ml_core.cli.bench --inference", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--inference", action="store_true", help="accepted for `ml_core.cli.bench` compatibility"
    )
    parser.add_argument("--checkpoint", type=Path, help="checkpoint to time (default: random reference-size)")
    parser.add_argument("--frames", type=int, default=20, help="crops per video")
    parser.add_argument("--videos", type=int, default=4, help="videos batched together in the batched figure")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--devices", default="auto", help="comma-separated (cpu,cuda); auto = cpu and cuda if any"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: one per core)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    return parser


def _emit(text):
    print(text)  # noqa: T201 - this module is a command-line tool


def _timed(fn, repeats, sync):
    """(median, best) seconds over `repeats` calls; best shows the machine's speed when shared."""
    times = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def write_random_reference(directory, frames=20):
    torch.manual_seed(0)
    path = Path(directory) / f"model_0_acc_{frames}_frames_bench.pt"
    torch.save(DeepfakeDetector(DetectorConfig.reference(frames)).state_dict(), path)
    return path


def bench_device(checkpoint, device, args):
    cuda = device.startswith("cuda")
    sync = (lambda: torch.cuda.synchronize()) if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    loads = []
    for _ in range(3):
        started = time.perf_counter()
        predictor = Predictor(checkpoint, device=device, threads=args.threads)
        sync()
        loads.append(time.perf_counter() - started)
    size = predictor.config.image_size
    generator = torch.Generator().manual_seed(0)
    crops = [torch.randint(0, 256, (size, size, 3), generator=generator, dtype=torch.uint8).numpy()
             for _ in range(args.frames)]  # fmt: skip
    x = predictor.preprocess(crops)  # (T, 3, S, S)
    batched = x.repeat(args.videos, 1, 1, 1)  # (videos*T, 3, S, S)
    for _ in range(2):  # warm-up: allocator, cuDNN autotuning, lazy kernels
        predictor.classify_crops(x, [args.frames])
    one, one_best = _timed(lambda: predictor.classify_crops(x, [args.frames]), args.repeats, sync)
    many, _ = _timed(
        lambda: predictor.classify_crops(batched, [args.frames] * args.videos), args.repeats, sync
    )
    preprocess, _ = _timed(lambda: predictor.preprocess(crops), args.repeats, lambda: None)
    explain = statistics.median(predictor.explain_crops(x, [args.frames])[2] for _ in range(args.repeats))
    figures = {
        "device": device if not cuda else f"{device} ({torch.cuda.get_device_name()})",
        "amp": predictor.amp and str(predictor.amp_dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "model": predictor.model_name,
        "load_seconds_median": statistics.median(loads),
        "load_seconds_first": loads[0],
        "frames": args.frames,
        "image_size": size,
        "backbone": predictor.config.backbone,
        "seconds_per_video": one,
        "seconds_per_video_best": one_best,
        "fps_one_video": args.frames / one,
        "videos_batched": args.videos,
        "fps_batched": args.frames * args.videos / many,
        "preprocess_seconds_per_video": preprocess,
        "gradcam_seconds_per_video": explain,
    }
    if cuda:
        figures["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return figures


def main(argv=None):
    args = get_args_parser().parse_args(argv)
    devices = args.devices.split(",") if args.devices != "auto" else ["cpu"]
    if args.devices == "auto" and torch.cuda.is_available():
        devices.append("cuda")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or write_random_reference(tmp, args.frames)
        results = [bench_device(checkpoint, device, args) for device in devices]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    if args.json:
        _emit(json.dumps({"results": results, "peak_rss_mb": peak_rss_mb}, indent=2))
        return 0
    for r in results:
        _emit(
            f"[{r['device']}] amp={r['amp']} threads={r['threads']} model={r['model']}\n"
            f"  load: {r['load_seconds_median']:.2f}s median of 3 (first {r['load_seconds_first']:.2f}s)\n"
            f"  classifier ({r['backbone']}), {r['frames']} crops at {r['image_size']} px: "
            f"{r['seconds_per_video']:.3f}s median "
            f"(best {r['seconds_per_video_best']:.3f}s) = {r['fps_one_video']:.1f} frames/s; "
            f"{r['videos_batched']} videos in one pass: "
            f"{r['fps_batched']:.1f} frames/s\n"
            f"  preprocessing {r['preprocess_seconds_per_video'] * 1000:.1f} ms/video; "
            f"Grad-CAM on top of the forward pass {r['gradcam_seconds_per_video'] * 1000:.0f} ms/video"
            + (f"\n  peak GPU memory {r['peak_gpu_memory_mb']:.0f} MiB" if "peak_gpu_memory_mb" in r else "")
        )
    if "cuda" not in devices:
        _emit("  (no CUDA device here: GPU figures not measured)")
    _emit(f"peak process memory (RSS): {peak_rss_mb:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
