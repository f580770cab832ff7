"""Typed errors whose `user_message` can be shown to the person who uploaded the video."""

from ml_core.constants import VIDEO_FORMATS


class UsageError(ValueError):
    """Arguments or data a command cannot work with. Library code raises it; the command-line
    entry points (ml_core.cli.*) turn it into an exit with its message."""


class MlCoreError(Exception):
    """Base class. `code` is stable (stored, tested); `user_message` is for people."""

    code = "error"
    user_message = "The video could not be analysed."

    def __init__(self, detail="", *, user_message=None):
        super().__init__(detail or user_message or self.user_message)
        if user_message:
            self.user_message = user_message
        self.detail = detail


class MediaError(MlCoreError):
    code = "media"


class NotAVideo(MediaError):
    code = "not_a_video"
    user_message = (
        f"This file is not a readable video. Upload an {VIDEO_FORMATS} file that plays in a media player."
    )


class NoVideoStream(MediaError):
    code = "no_video_stream"
    user_message = "This file has no video track (it may be audio only). Upload a file with video."


class TruncatedVideo(MediaError):
    code = "truncated"
    user_message = (
        "This video is damaged or incomplete: no frame could be decoded. Re-export or re-download it "
        "and try again."
    )


class VideoTooLong(MediaError):
    code = "too_long"
    user_message = "This video is too long to analyse. Trim it to the part with the face and upload again."


class VideoTooLarge(MediaError):
    code = "too_large"
    user_message = "This video's frames are too large to analyse. Re-encode it at 4K or below."


class NoFaceFound(MediaError):
    code = "no_face"
    user_message = (
        "No face was found in the sampled frames. The detector needs a clearly visible, roughly "
        "frontal face; try a clip where the face is larger, better lit and not turned away, or "
        "analyse more frames."
    )


class CheckpointError(MlCoreError):
    code = "bad_checkpoint"
    user_message = "The detector checkpoint could not be loaded."
