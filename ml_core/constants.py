"""Rules the web app, the worker and the command-line tools share: one copy of each."""

from pathlib import Path

# Video file extensions we accept, each with the Content-Type a stored file is served with. A stored
# name only ever carries one of these; the client's name and claimed type are never trusted.
VIDEO_TYPES = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}
VIDEO_EXTENSIONS = tuple(VIDEO_TYPES)
# The same list for people: "MP4, M4V, MOV, WEBM, MKV or AVI".
VIDEO_FORMATS = ", ".join(e.lstrip(".").upper() for e in VIDEO_EXTENSIONS[:-1]) + (
    f" or {VIDEO_EXTENSIONS[-1].lstrip('.').upper()}"
)

# The largest frame analysed: 4K UHD, in pixels. The probe refuses a larger one from the headers
# before decoding anything, and the decoder is not allowed to allocate a larger picture.
MAX_FRAME_SIZE = (3840, 2160)
MAX_FRAME_PIXELS = MAX_FRAME_SIZE[0] * MAX_FRAME_SIZE[1]

# Face boxes: "fast" (working-scale detection) or "exact" (full-resolution HOG's own boxes,
# what the reference checkpoints were trained on).
BOX_MODES = ("fast", "exact")

# Face detectors (ml_core.media.extraction): the default, HOG then MTCNN where HOG sees nobody;
# HOG alone (what exact boxes reproduce); MTCNN alone; dlib's CNN (minutes per clip on CPU).
FACE_DETECTORS = ("hog+mtcnn", "hog", "mtcnn", "cnn")
DEFAULT_FACE_DETECTOR = FACE_DETECTORS[0]
# Dark or flat frames equalised for detection ("auto") or scanned as decoded ("off").
CONTRASTS = ("auto", "off")

# Frames sampled per video: fewer says little, more costs time without changing verdicts. The upload
# form, the API, `manage.py analyze` and `ml_core.cli.predict` all default to DEFAULT_FRAMES.
MIN_FRAMES, MAX_FRAMES, DEFAULT_FRAMES = 10, 100, 20

# The detector shipped with the project: what `make run` installs (the DETECTOR_DEFAULT_CHECKPOINT
# setting's default) and what `ml_core.cli.predict` uses when given no checkpoint.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "models" / "default" / "detector.pt"

# The normalisation torchvision's ImageNet backbones (and the reference checkpoints) were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
