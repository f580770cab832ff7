"""One analysis of a video: the one path the worker, `manage.py analyze` and ml_core.cli.predict take.

probe (once) and check the limits -> load the model -> find and crop the faces with the model's
own crop recipe -> classify -> explain.
Limits are checked by the extraction, so a video over them gets the specific message (its length
and the limit), whoever asked. Typed errors (ml_core.errors) carry the message for people.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ml_core.inference.predictor import Prediction, Predictor
from ml_core.media.extraction import Extraction, check_limits, extract_faces
from ml_core.media.video import VideoInfo, probe


@dataclass
class Analysis:
    extraction: Extraction
    prediction: Prediction
    # Where the crops departed from the model's recipe (an explicit override, e.g. a faster
    # detector on a CPU host): {"detector": ..., "contrast": ..., "boxes": ...}, as applied.
    overrides: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds: extract, predict, explain

    @property
    def video(self) -> VideoInfo:
        return self.extraction.video

    def details(self) -> dict:
        """How this result was made, as the worker stores it with the result (plain JSON)."""
        extraction, prediction = self.extraction, self.prediction
        return {
            "video": self.video.to_dict() | {"path": ""},  # a temp path means nothing later
            "frames_sampled": len(extraction.frames),
            "face_boxes": extraction.config.boxes,
            "face_detector": extraction.config.detector,
            "contrast": extraction.config.contrast,
            "crop_recipe_overrides": dict(self.overrides),
            "main_face_from_mtcnn": extraction.stats.get("main_face_from_mtcnn", 0),
            "missing_frames": extraction.missing_frames(),
            "warnings": list(extraction.warnings),
            "main_identity": prediction.main_identity,
            "decisive_identity": prediction.decisive_identity,
            "threshold": prediction.threshold,
            "uncertain_band": prediction.uncertain_band,
            # How sure the score is (ml_core.inference.score): None when no person had 2 faces.
            "score_interval": prediction.score_interval,
            "interval_level": prediction.interval_level,
        }


def analyse(
    video,
    load_predictor: Callable[[], Predictor],
    *,
    frames=None,
    max_duration=None,
    explain=False,
    on_stage=None,
    **overrides,
) -> Analysis:
    """Analyse the video file at `video` with the predictor `load_predictor()` returns.

    The video is probed and its limits checked before the model is loaded: a file that cannot be
    analysed costs no model load. `frames`: frames to sample (default: the model's clip length).
    `on_stage(name)` is called as the work moves on: "finding_faces", "classifying", then
    "explaining" when explain=True. `overrides`: explicit crop-recipe departures (`detector`,
    `boxes`), recorded in the result.
    """
    on_stage = on_stage or (lambda name: None)
    info = probe(str(video))
    check_limits(info, max_duration)
    started = time.perf_counter()
    predictor = load_predictor()
    timings = {"model_load": time.perf_counter() - started}
    on_stage("finding_faces")
    asked = {key: value for key, value in overrides.items() if value}
    config = predictor.extract_config(frames, max_duration=max_duration, **asked)
    # What really departs from the recipe (an asked detector that exact boxes ignore does not).
    recipe = predictor.config.crop_recipe
    applied = {"detector": config.detector, "contrast": config.contrast, "boxes": config.boxes}
    departures = {key: value for key, value in applied.items() if value != getattr(recipe, key)}
    started = time.perf_counter()
    extraction = extract_faces(str(video), config, info=info)
    timings["extract"] = time.perf_counter() - started
    on_stage("classifying")
    started = time.perf_counter()
    prediction = predictor.predict(extraction, explain=explain, on_explain=lambda: on_stage("explaining"))
    explain_seconds = prediction.timings.get("explain", 0.0)
    timings["predict"] = time.perf_counter() - started - explain_seconds
    if explain:
        timings["explain"] = explain_seconds
    prediction.timings["extract"] = timings["extract"]
    return Analysis(extraction, prediction, departures, timings)
