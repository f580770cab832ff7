"""Face crops to model input tensors, exactly as a checkpoint's config says.

The reference checkpoints were trained on BGR pixels (OpenCV's order) scaled to [0, 1] and
normalised with the ImageNet mean/std in that same position order, i.e. the "R" statistics
applied to the blue channel. We reproduce that rather than "fix" it: the weights expect it.
"""

from collections.abc import Sequence

import numpy as np
import torch

from ml_core.constants import IMAGENET_MEAN, IMAGENET_STD
from ml_core.resizing import resize_square


def crops_to_tensor(
    crops: Sequence[np.ndarray],
    *,
    size: int = 112,
    channel_order: str = "BGR",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> torch.Tensor:
    """(T, 3, size, size) float32 from T uint8 BGR crops (H, W, 3).

    Crops not already size x size are resized without keeping the aspect ratio, like the
    reference's Resize((112, 112)).
    """
    if channel_order not in ("BGR", "RGB"):
        raise ValueError(f"channel_order must be 'BGR' or 'RGB', got {channel_order!r}")
    if len(crops) == 0:
        raise ValueError("no crops to convert")
    batch = np.empty((len(crops), size, size, 3), np.uint8)  # (T, H, W, 3)
    for i, crop in enumerate(crops):
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"crop {i}: expected uint8 (H, W, 3), got {crop.dtype} {crop.shape}")
        crop = resize_square(crop, size)
        batch[i] = crop if channel_order == "BGR" else crop[:, :, ::-1]
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)  # (T, 3, H, W) in [0, 1]
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return tensor.sub_(mean_t).div_(std_t).contiguous()
