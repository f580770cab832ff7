"""Fit the MTCNN -> HOG box mapping (ml_core.media.face_calibration) and, with --write, check it in.

    .venv/bin/python scripts/fit_mtcnn_to_hog.py ../shared/videos ../shared/training [--write]

Pairs come from frames where HOG and MTCNN each find one face, the same one (IoU >= 0.3). The
fit changes the crops MTCNN-found faces get, so a new mapping is a model-facing change: retrain
or re-test the shipped detector after writing one.
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from ml_core.constants import VIDEO_EXTENSIONS  # noqa: E402
from ml_core.media import mtcnn  # noqa: E402
from ml_core.media.boxes import iou  # noqa: E402
from ml_core.media.face_calibration import CALIBRATION_FILE, fit_mtcnn_to_hog  # noqa: E402
from ml_core.media.faces import aligned_scale, detect, resized  # noqa: E402
from ml_core.media.video import iter_frames, probe  # noqa: E402


def calibration_pairs(videos, frames=10, work_max_side=800):
    """(HOG box, MTCNN box (x1, y1, x2, y2)) on frames where each finds one face, the same one."""
    pairs = []
    for video in videos:
        info = probe(video)
        scale = aligned_scale(info.width, info.height, work_max_side)
        for decoded in iter_frames(video, frames):
            hog = detect(decoded.image, scale, "hog")
            found = mtcnn.find(cv2.cvtColor(resized(decoded.image, scale), cv2.COLOR_BGR2RGB))
            if len(hog) != 1 or len(found) != 1:
                continue
            x1, y1, x2, y2 = (float(v) / scale for v in found[0][0])
            if iou(hog[0].box, (y1, x2, y2, x1)) >= 0.3:
                pairs.append((hog[0].box, (x1, y1, x2, y2)))
    return pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--frames", type=int, default=10, help="frames sampled per clip")
    parser.add_argument("--write", action="store_true", help=f"write the fit to {CALIBRATION_FILE.name}")
    args = parser.parse_args(argv)
    videos = sorted(
        path
        for folder in args.folders
        for path in folder.rglob("*")
        if path.suffix.lower() in VIDEO_EXTENSIONS
    )
    pairs = calibration_pairs(videos, frames=args.frames)
    if not pairs:
        raise SystemExit("no frame where both detectors found the same single face")
    mapping = fit_mtcnn_to_hog(pairs)
    clips = len({str(v) for v in videos})
    record = {
        "mapping": mapping,
        "fitted_on": f"{len(pairs)} pairs of boxes on {clips} clips of {', '.join(map(str, args.folders))}, "
        f"{args.frames} frames per clip, working scale 800 px",
        "command": "python scripts/fit_mtcnn_to_hog.py " + " ".join(map(str, args.folders)) + " --write",
    }
    print(json.dumps(record, indent=2))
    if args.write:
        CALIBRATION_FILE.write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
