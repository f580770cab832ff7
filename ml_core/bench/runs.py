"""What every benchmark mode shares: memory figures, warm-up, clip lists, runs in a fresh process.

Each measured run can go to its own subprocess (`spawn`: `python -m ml_core.cli.bench --worker`)
so peak memory (ru_maxrss, which counts FFmpeg's and dlib's C allocations that tracemalloc misses)
belongs to that run alone. Libraries and face models are loaded before the clock starts.
"""

import json
import resource
import subprocess
import sys

import numpy as np

from ml_core.constants import VIDEO_EXTENSIONS


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb():
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def warm_up(mtcnn=False):
    """Load the face models a worker loads at start, so no run pays for them on the clock."""
    import face_recognition  # noqa: F401  (loads dlib's models, as a worker would at start)

    from ml_core.media import face_tracking, faces, hog_exact

    faces.load_detector("hog+mtcnn" if mtcnn else "hog")
    face_tracking.load_encoder()
    hog_exact.available()  # the single-level detector region searches and exact boxes use


def expand_videos(paths):
    """(video, the folder or file it was named by) for files, and for every video under folders."""
    found = []
    for path in paths:
        if path.is_dir():
            found += [(p, path) for p in sorted(path.rglob("*")) if p.suffix.lower() in VIDEO_EXTENSIONS]
        else:
            found.append((path, path))
    return found


def spawn(kind, video, args, spec=None):
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


def summary(stats):
    arr = np.asarray(stats, dtype=float)
    if arr.size == 0:
        return "none"
    return (
        f"n={arr.size} min={arr.min():.3f} p5={np.percentile(arr, 5):.3f} median={np.median(arr):.3f} "
        f"mean={arr.mean():.3f} >=0.9: {100 * (arr >= 0.9).mean():.1f}%"
    )
