"""Benchmark our media pipeline against a faithful re-implementation of the reference app's.

    python -m ml_core.cli.bench VIDEO... --frames 20 [--boxes fast|exact] [--iou] [--repeats 3] [--json F]
    python -m ml_core.cli.bench --make-clip SRC DST --seconds 45     # loop a clip into a longer one
    python -m ml_core.cli.bench --inference ...          # model benchmark (ml_core.cli.bench_inference)
    python -m ml_core.cli.bench FOLDER... --detectors hog hog+mtcnn --one-process --reference-clips 6
                                         # face detectors side by side on every clip of the folders

Each (pipeline, video) runs in its own subprocess so peak memory (ru_maxrss, which counts
FFmpeg's and dlib's C allocations that tracemalloc misses) belongs to that run alone. Libraries
and face models are loaded before the clock starts, for both pipelines.

The reference pipeline, as the public app does it: the display path decodes the whole video
into a Python list; the model path takes the first N frames; face_recognition.face_locations
(dlib HOG, upsample 1) runs on every full-resolution frame for the model, then again for the
display crops (with 40 px padding); a frame with no face is used whole.

--iou also runs full-resolution HOG (what the reference checkpoints' crops came from) on our
sampled frames and reports the IoU between its boxes and ours. --boxes picks our boxes: "fast"
(the default for our own checkpoints) or "exact" (what reference checkpoints get).

--detectors compares face detectors (DETECTOR[:CONTRAST], e.g. hog:off hog+mtcnn) on every clip
of the given files and folders (recursive): per clip the frames sampled, the frames where the
main face was found and the time; per folder the share of frames with the main face and the
clips where it is found in at least 95% of them. The reference pipeline (minutes per HD clip)
runs on --reference-clips of the 720p-and-larger clips only. --one-process runs everything in
this process (no per-run peak memory, but no ~6 s start per run: 400 runs take minutes, not hours).
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ml_core.constants import BOX_MODES, VIDEO_EXTENSIONS


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _warm_up():
    import face_recognition  # noqa: F401  (loads dlib's models, as a worker would at start)

    from ml_core.media import hog_exact
    from ml_core.media.faces import _encoder, _hog

    _hog()
    _encoder()
    hog_exact.available()  # the single-level detector region searches and exact boxes use


def _warm_up_mtcnn():
    from ml_core.media.faces import _mtcnn

    _mtcnn()


def expand_videos(paths):
    """(video, the folder or file it was named by) for files, and for every video under folders."""
    found = []
    for path in paths:
        if path.is_dir():
            found += [(p, path) for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS]
        else:
            found.append((path, path))
    return found


def parse_detector(spec):
    """ "hog+mtcnn" or "hog:off" -> (detector, contrast)."""
    from ml_core.media.extraction import CONTRASTS, DETECTORS

    detector, _, contrast = spec.partition(":")
    contrast = contrast or "auto"
    if detector not in DETECTORS or contrast not in CONTRASTS:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: use DETECTOR[:CONTRAST] with {DETECTORS} and {CONTRASTS}"
        )
    return detector, contrast


def fit_mtcnn(videos, frames=5):
    """Pairs of (HOG box, MTCNN box) where both find one face, the same one; the MTCNN_TO_HOG fit."""
    import cv2

    from ml_core.media.faces import _mtcnn_found, aligned_scale, detect, fit_mtcnn_to_hog, iou, resized
    from ml_core.media.video import iter_frames, probe

    pairs = []
    for video, _ in videos:
        info = probe(video)
        scale = aligned_scale(info.width, info.height, 800)
        for decoded in iter_frames(video, max(10, frames)):
            hog = detect(decoded.image, scale, "hog")
            found = _mtcnn_found(cv2.cvtColor(resized(decoded.image, scale), cv2.COLOR_BGR2RGB))
            if len(hog) != 1 or len(found) != 1:
                continue
            x1, y1, x2, y2 = (float(v) / scale for v in found[0][0])
            if iou(hog[0].box, (y1, x2, y2, x1)) >= 0.3:
                pairs.append((hog[0].box, (x1, y1, x2, y2)))
    return len(pairs), fit_mtcnn_to_hog(pairs) if pairs else None


def run_detector(path, frames, detector, contrast):
    """One extraction with `detector`: frames sampled, frames with the main face, seconds."""
    from ml_core.errors import MlCoreError
    from ml_core.media.extraction import ExtractConfig, extract_faces

    started = time.perf_counter()
    try:
        extraction = extract_faces(path, ExtractConfig(frames=frames, detector=detector, contrast=contrast))
    except MlCoreError as exc:
        # No face at all: every requested frame counts as missed (the sampler's count is not known).
        return {
            "sampled": frames,
            "main_found": 0,
            "seconds": time.perf_counter() - started,
            "error": exc.code,
        }
    return {
        "sampled": len(extraction.frames),
        "main_found": len(extraction.track()),
        "seconds": extraction.timings["total"],
        "identities": [i.frame_count for i in extraction.identities],
        "from_mtcnn": extraction.stats.get("main_face_from_mtcnn", 0),
        "equalised": extraction.stats.get("equalised_frames", 0),
    }


def run_ours(path, frames, strategy="uniform", boxes="fast"):
    from ml_core.media.extraction import ExtractConfig, extract_faces

    extraction = extract_faces(path, ExtractConfig(frames=frames, strategy=strategy, boxes=boxes))
    return {
        "stages": extraction.timings,
        "sampled": len(extraction.frames),
        "identities": [i.frame_count for i in extraction.identities],
        "main_found": len(extraction.track()),
        "stats": extraction.stats,
    }


def run_reference(path, frames, max_gb=8.0):
    """The reference app's preprocessing, bugs that cost time or memory included."""
    import cv2
    import face_recognition

    stages = {}
    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    need_gb = count * width * height * 3 / 2**30
    all_frames = []
    if need_gb <= max_gb:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            all_frames.append(frame)  # the display path keeps the whole video in RAM
    cap.release()
    stages["decode_all"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(path))
    first = []
    while len(first) < frames:
        ok, frame = cap.read()
        if not ok:
            break
        first.append(frame)
    cap.release()
    stages["decode_first_n"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model_crops, whole_frame = [], 0
    for frame in first:
        faces = face_recognition.face_locations(frame)  # full resolution, upsample 1
        if faces:
            top, right, bottom, left = faces[0]  # the first face, not the largest
            model_crops.append(cv2.resize(frame[top:bottom, left:right], (112, 112)))
        else:
            whole_frame += 1
            model_crops.append(cv2.resize(frame, (112, 112)))  # silent whole-frame fallback
    stages["detect_model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    display = all_frames[: len(first)] if all_frames else first
    shown = 0
    for frame in display:
        faces = face_recognition.face_locations(frame)
        if faces:
            top, right, bottom, left = faces[0]
            pad = 40
            crop = frame[max(0, top - pad) : bottom + pad, max(0, left - pad) : right + pad]
            shown += int(crop.size > 0)
    stages["detect_display"] = time.perf_counter() - t0
    stages["total"] = sum(stages.values())
    return {
        "stages": {k: round(v, 4) for k, v in stages.items()},
        "sampled": len(first),
        "whole_frame_fallbacks": whole_frame,
        "decoded_into_ram": len(all_frames),
        "skipped_whole_video_decode": need_gb > max_gb,
    }


def run_iou(path, frames, boxes="fast"):
    """IoU of our boxes vs full-resolution HOG (upsample 1) on our sampled frames."""
    import dlib

    from ml_core.media.extraction import ExtractConfig, extract_faces
    from ml_core.media.faces import iou
    from ml_core.media.video import iter_frames

    extraction = extract_faces(path, ExtractConfig(frames=frames, boxes=boxes))
    ours = {f.index: [face.box for face in f.faces] for f in extraction.frames}
    detector = dlib.get_frontal_face_detector()
    ious, full_only, ours_only = [], 0, 0
    import cv2

    for decoded in iter_frames(path, frames):
        rgb = cv2.cvtColor(decoded.image, cv2.COLOR_BGR2RGB)
        full = [(r.top(), r.right(), r.bottom(), r.left()) for r in detector(rgb, 1)]
        mine = ours.get(decoded.index, [])
        for box in full:
            best = max((iou(box, m) for m in mine), default=0.0)
            if best > 0.1:
                ious.append(best)
            else:
                full_only += 1
        ours_only += sum(1 for m in mine if max((iou(m, b) for b in full), default=0.0) <= 0.1)
    return {"ious": [round(v, 4) for v in ious], "full_res_only": full_only, "ours_only": ours_only}


def _worker(args):
    _warm_up()
    if args.detectors and "mtcnn" in args.detectors[0][0]:
        _warm_up_mtcnn()
    baseline = current_rss_mb()
    try:
        if args.worker == "detector":
            result = run_detector(args.videos[0], args.frames, *args.detectors[0])
        elif args.worker == "ours":
            result = run_ours(args.videos[0], args.frames, boxes=args.boxes)
        elif args.worker == "reference":
            result = run_reference(args.videos[0], args.frames, args.reference_max_gb)
        else:
            result = run_iou(args.videos[0], args.frames, boxes=args.boxes)
    except Exception as exc:  # reported, not raised: one bad clip must not stop the benchmark
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result["baseline_rss_mb"] = round(baseline, 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))
    return 0


def _spawn(kind, video, args, spec=None):
    cmd = [
        sys.executable,
        "-m",
        "ml_core.cli.bench",
        "--worker",
        kind,
        str(video),
        "--frames",
        str(args.frames),
    ]
    cmd += ["--reference-max-gb", str(args.reference_max_gb), "--boxes", args.boxes]
    if spec:
        cmd += ["--detectors", ":".join(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


def _spawn_median(video, args):
    runs = [_spawn("ours", video, args) for _ in range(max(1, args.repeats))]
    timed = sorted((r for r in runs if "stages" in r), key=lambda r: r["stages"]["total"])
    if not timed:
        return runs[0]
    median = timed[len(timed) // 2]
    median["totals"] = [r["stages"]["total"] for r in timed]
    return median


def make_clip(src, dst, seconds):
    """Loop `src` into an H.264 clip of `seconds` (same size and frame rate)."""
    import av

    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        fps = stream.average_rate
        frames = []
        for frame in inp.decode(stream):
            frames.append(frame.to_ndarray(format="yuv420p"))
            if len(frames) >= int(fps * 10):  # at most 10 s of source in memory
                break
        width, height = stream.width, stream.height
    with av.open(str(dst), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast", "crf": "23"}
        total = int(round(float(fps) * seconds))
        for i in range(total):
            k = i % (2 * len(frames) - 2) if len(frames) > 1 else 0
            k = k if k < len(frames) else 2 * len(frames) - 2 - k  # ping-pong: no jump at the loop
            frame = av.VideoFrame.from_ndarray(frames[k], format="yuv420p")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return dst


def _summary(stats):
    arr = np.asarray(stats, dtype=float)
    if arr.size == 0:
        return "none"
    return (
        f"n={arr.size} min={arr.min():.3f} p5={np.percentile(arr, 5):.3f} median={np.median(arr):.3f} "
        f"mean={arr.mean():.3f} >=0.9: {100 * (arr >= 0.9).mean():.1f}%"
    )


def get_args_parser():
    parser = argparse.ArgumentParser(prog="python -m ml_core.cli.bench", description=__doc__.splitlines()[0])
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--pipelines", default="ours,reference", help="comma list: ours,reference")
    parser.add_argument("--iou", action="store_true", help="also measure box IoU vs full-resolution HOG")
    parser.add_argument(
        "--reference-max-gb", type=float, default=8.0, help="skip the whole-video decode beyond"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of our pipeline per clip (the median is reported; the reference's 10+ s run is "
        "long enough that one run is steady)",
    )
    parser.add_argument(
        "--boxes",
        choices=BOX_MODES,
        default="fast",
        help="our face boxes: fast, or exactly full-resolution HOG's (ml_core.media.hog_exact)",
    )
    parser.add_argument(
        "--detectors",
        nargs="+",
        type=parse_detector,
        metavar="DETECTOR[:CONTRAST]",
        help="compare these face detectors on every clip (e.g. hog hog+mtcnn, hog:off)",
    )
    parser.add_argument(
        "--reference-clips",
        type=int,
        default=3,
        help="with --detectors: the reference pipeline runs on this many 1080p and this many 720p clips",
    )
    parser.add_argument(
        "--fit-mtcnn", action="store_true", help="fit MTCNN_TO_HOG (ml_core.media.faces) on these clips"
    )
    parser.add_argument(
        "--one-process", action="store_true", help="run everything in this process (no per-run peak memory)"
    )
    parser.add_argument("--json", type=Path, help="also write all results here")
    parser.add_argument("--make-clip", nargs=2, metavar=("SRC", "DST"))
    parser.add_argument("--seconds", type=float, default=45.0)
    parser.add_argument("--worker", choices=("ours", "reference", "iou", "detector"), help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--inference" in argv:
        from ml_core.cli import bench_inference  # another module's benchmark; imported only when asked

        return bench_inference.main([a for a in argv if a != "--inference"])
    args = get_args_parser().parse_args(argv)
    if args.worker:
        return _worker(args)
    if args.make_clip:
        print(make_clip(*args.make_clip, seconds=args.seconds))
        return 0
    if args.detectors:
        return compare_detectors(args)
    if args.fit_mtcnn:
        count, mapping = fit_mtcnn(expand_videos(args.videos))
        print(f"{count} pairs: MTCNN_TO_HOG = {mapping}")
        return 0
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    results, all_ious = [], []
    for video in args.videos:
        row = {"video": str(video)}
        for kind in pipelines + (["iou"] if args.iou else []):
            row[kind] = _spawn_median(video, args) if kind == "ours" else _spawn(kind, video, args)
        results.append(row)
        _print_row(row)
        all_ious += row.get("iou", {}).get("ious", [])
    if args.iou:
        print(f"IoU vs full-resolution HOG, all clips: {_summary(all_ious)}")
    ratios = [r["speedup"] for r in results if "speedup" in r]
    if ratios:
        print(f"speed ratio reference/ours: min {min(ratios):.1f}x, median {float(np.median(ratios)):.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def _reference_set(videos, sizes, per_class):
    """`per_class` 1080p-class and 720p-class clips, spread evenly over the sorted list."""
    chosen = set()
    for low, high in ((1000, 10**6), (700, 1000)):
        hd = [v for v, _ in videos if low <= min(sizes[v]) < high]
        if hd and per_class > 0:
            step = len(hd) / min(per_class, len(hd))
            chosen.update(hd[int(i * step)] for i in range(min(per_class, len(hd))))
    return chosen


def compare_detectors(args):
    from ml_core.media.video import probe

    specs = [tuple(spec) for spec in args.detectors]
    names = [f"{d}:{c}" for d, c in specs]
    videos = expand_videos(args.videos)
    sizes = {}
    for video, _ in videos:
        try:
            info = probe(video)
            sizes[video] = (info.width, info.height)
        except Exception:  # an unreadable clip is reported by the runs themselves
            sizes[video] = (0, 0)
    reference = (
        _reference_set(videos, sizes, args.reference_clips) if "reference" in args.pipelines else set()
    )
    if args.one_process:
        _warm_up()
        if any("mtcnn" in d for d, _ in specs):
            _warm_up_mtcnn()
    print(f"{len(videos)} clips, {args.frames} frames each; detectors {', '.join(names)}", flush=True)
    rows = []
    for video, root in videos:
        row = {"video": str(video), "folder": str(root), "size": list(sizes[video])}
        for name, spec in zip(names, specs):
            if args.one_process:
                row[name] = run_detector(video, args.frames, *spec)
            else:
                row[name] = _spawn("detector", video, args, spec)
        if video in reference:
            if args.one_process:
                row["reference"] = run_reference(video, args.frames, args.reference_max_gb)
            else:
                row["reference"] = _spawn("reference", video, args)
        rows.append(row)
        _print_detector_row(row, names)
    _print_detector_summary(rows, names)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def _found(result):
    return result.get("main_found", 0), result.get("sampled", 0)


def _print_detector_row(row, names):
    width, height = row["size"]
    parts = [f"{Path(row['video']).name} ({width}x{height})"]
    for name in names:
        result = row[name]
        found, sampled = _found(result)
        extra = f" [{result['error']}]" if "error" in result else ""
        if result.get("from_mtcnn"):
            extra += f" {result['from_mtcnn']} by MTCNN"
        if result.get("equalised"):
            extra += f" {result['equalised']} equalised"
        parts.append(
            f"{name:>15} main face {found:3d}/{sampled:<3d} {result.get('seconds', 0):6.2f} s{extra}"
        )
    if "reference" in row:
        ref = row["reference"].get("stages", {}).get("total")
        ratios = " ".join(
            f"{name} {ref / max(row[name].get('seconds', 0), 1e-6):.1f}x" for name in names if ref is not None
        )
        parts.append(
            f"{'reference':>15} {ref if ref is not None else row['reference']} s; speed ratio {ratios}"
        )
    print("\n  ".join(parts), flush=True)


def _print_detector_summary(rows, names):
    for folder in sorted({row["folder"] for row in rows}):
        group = [row for row in rows if row["folder"] == folder]
        print(f"\n{folder}: {len(group)} clips")
        for name in names:
            found = sum(_found(row[name])[0] for row in group)
            sampled = sum(_found(row[name])[1] for row in group)
            good = [row for row in group if _found(row[name])[0] >= 0.95 * max(_found(row[name])[1], 1)]
            seconds = [row[name].get("seconds", 0) for row in group]
            hd = [row[name].get("seconds", 0) for row in group if min(row["size"]) >= 700]
            print(
                f"  {name:>15}: main face in {found}/{sampled} sampled frames "
                f"({100 * found / max(sampled, 1):.1f}%), clips >= 95%: {len(good)}/{len(group)}; "
                f"median {np.median(seconds):.2f} s per clip"
                + (f", 720p+ median {np.median(hd):.2f} s (max {max(hd):.2f})" if hd else "")
            )
            for row in group:
                if row not in good:
                    found, sampled = _found(row[name])
                    print(f"      below 95%: {Path(row['video']).name} {found}/{sampled}")
    timed = [row for row in rows if "stages" in row.get("reference", {})]
    for name in names:
        ratios = [
            row["reference"]["stages"]["total"] / max(row[name].get("seconds", 0), 1e-6) for row in timed
        ]
        if ratios:
            print(
                f"speed ratio reference/{name} on {len(ratios)} 720p-1080p clips: "
                f"min {min(ratios):.1f}x, median {float(np.median(ratios)):.1f}x"
            )


def _print_row(row):
    name = Path(row["video"]).name
    ours, ref = row.get("ours", {}), row.get("reference", {})
    parts = [name]
    if "stages" in ours:
        s = ours["stages"]
        stages = " ".join(f"{k} {s[k]:.2f}" for k in ("probe", "decode", "detect", "track", "crop"))
        extra = ours["peak_rss_mb"] - ours["baseline_rss_mb"]
        spread = ours.get("totals", [s["total"]])
        runs = f", median of {len(spread)}: {min(spread):.2f}-{max(spread):.2f}" if len(spread) > 1 else ""
        parts.append(
            f"ours {s['total']:.2f}s ({stages}{runs}) peak {ours['peak_rss_mb']:.0f} MB (+{extra:.0f}) "
            f"main face {ours['main_found']}/{ours['sampled']} identities {ours['identities']}"
        )
    elif ours:
        parts.append(f"ours: {ours.get('error')}")
    if "stages" in ref:
        s = ref["stages"]
        names = ("decode_all", "decode_first_n", "detect_model", "detect_display")
        stages = " ".join(f"{k} {s[k]:.2f}" for k in names)
        parts.append(
            f"reference {s['total']:.2f}s ({stages}) "
            f"peak {ref['peak_rss_mb']:.0f} MB whole-frame fallbacks {ref['whole_frame_fallbacks']}"
            + (" [whole-video decode skipped: too big]" if ref["skipped_whole_video_decode"] else "")
        )
    elif ref:
        parts.append(f"reference: {ref.get('error')}")
    if "stages" in ours and "stages" in ref:
        row["speedup"] = ref["stages"]["total"] / max(ours["stages"]["total"], 1e-6)
        parts.append(f"speed ratio {row['speedup']:.1f}x")
    if "iou" in row:
        parts.append(f"IoU {_summary(row['iou'].get('ious', []))} {row['iou'].get('error', '')}")
    print("\n  ".join(parts), flush=True)


if __name__ == "__main__":
    sys.exit(main())
