"""Face detectors side by side (DETECTOR[:CONTRAST], e.g. hog:off hog+mtcnn) on every clip of folders.

Per clip: the frames sampled, the frames where the main face was found and the time; per folder
the share of frames with the main face and the clips where it is found in at least 95% of them.
The reference pipeline (minutes per HD clip) runs on a few of the 720p-and-larger clips only.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ml_core.bench.pipeline import run_reference
from ml_core.bench.runs import expand_videos, spawn, warm_up


def parse_detector(spec):
    """ "hog+mtcnn" or "hog:off" -> (detector, contrast)."""
    from ml_core.constants import CONTRASTS, FACE_DETECTORS

    detector, _, contrast = spec.partition(":")
    contrast = contrast or "auto"
    if detector not in FACE_DETECTORS or contrast not in CONTRASTS:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: use DETECTOR[:CONTRAST] with {FACE_DETECTORS} and {CONTRASTS}"
        )
    return detector, contrast


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


def reference_set(videos, sizes, per_class):
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
    reference = reference_set(videos, sizes, args.reference_clips) if "reference" in args.pipelines else set()
    if args.one_process:
        warm_up(mtcnn=any("mtcnn" in d for d, _ in specs))
    print(f"{len(videos)} clips, {args.frames} frames each; detectors {', '.join(names)}", flush=True)
    rows = []
    for video, root in videos:
        row = {"video": str(video), "folder": str(root), "size": list(sizes[video])}
        for name, spec in zip(names, specs):
            if args.one_process:
                row[name] = run_detector(video, args.frames, *spec)
            else:
                row[name] = spawn("detector", video, args, spec)
        if video in reference:
            if args.one_process:
                row["reference"] = run_reference(video, args.frames, args.reference_max_gb)
            else:
                row["reference"] = spawn("reference", video, args)
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
