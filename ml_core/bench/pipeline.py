"""Our media pipeline against a faithful re-implementation of the reference app's preprocessing.

The reference pipeline, as the public app does it: the display path decodes the whole video
into a Python list; the model path takes the first N frames; face_recognition.face_locations
(dlib HOG, upsample 1) runs on every full-resolution frame for the model, then again for the
display crops (with 40 px padding); a frame with no face is used whole.

`run_iou` also runs full-resolution HOG (what the reference checkpoints' crops came from) on our
sampled frames and reports the IoU between its boxes and ours, for our "fast" or "exact" boxes.
"""

import json
import time
from pathlib import Path

import numpy as np

from ml_core.bench.runs import spawn, summary


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

    from ml_core.media.boxes import iou
    from ml_core.media.extraction import ExtractConfig, extract_faces
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


def spawn_median(video, args):
    runs = [spawn("ours", video, args) for _ in range(max(1, args.repeats))]
    timed = sorted((r for r in runs if "stages" in r), key=lambda r: r["stages"]["total"])
    if not timed:
        return runs[0]
    median = timed[len(timed) // 2]
    median["totals"] = [r["stages"]["total"] for r in timed]
    return median


def compare_pipelines(args):
    """Each clip through our pipeline (median of --repeats) and the reference's, each in its own process."""
    pipelines = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    results, all_ious = [], []
    for video in args.videos:
        row = {"video": str(video)}
        for kind in pipelines + (["iou"] if args.iou else []):
            row[kind] = spawn_median(video, args) if kind == "ours" else spawn(kind, video, args)
        results.append(row)
        print_row(row)
        all_ious += row.get("iou", {}).get("ious", [])
    if args.iou:
        print(f"IoU vs full-resolution HOG, all clips: {summary(all_ious)}")
    ratios = [r["speedup"] for r in results if "speedup" in r]
    if ratios:
        print(f"speed ratio reference/ours: min {min(ratios):.1f}x, median {float(np.median(ratios)):.1f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def print_row(row):
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
        parts.append(f"IoU {summary(row['iou'].get('ious', []))} {row['iou'].get('error', '')}")
    print("\n  ".join(parts), flush=True)
