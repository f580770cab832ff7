"""The one resize rule: area averaging when shrinking, bilinear when enlarging.

Bilinear shrinking skips pixels and aliases fine texture, which is where blending traces live;
area averaging keeps them as a camera would. Training crops, inference crops and the frames the
face detectors scan all follow this rule, so a model sees the pixels it was trained on.
"""

import cv2


def interpolation(shrinking: bool) -> int:
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


def resize_square(image, size: int):
    """`image` (H, W, C) as a new size x size array (never a view of it); the aspect ratio is not kept."""
    if image.shape[:2] == (size, size):
        return image.copy()
    shrinking = image.shape[0] > size or image.shape[1] > size
    return cv2.resize(image, (size, size), interpolation=interpolation(shrinking))
