"""Grad-CAM towards the FAKE class on the backbone's last stage (`model[7]`), per face crop.

Grad-CAM needs the last stage's activations A (captured with a forward hook on `model[7]`) and
the gradient of the FAKE score with respect to them. Everything after `model[7]` is average
pooling and the temporal head, so the gradient only needs a graph from A onwards: the
activations of the classification pass are reused and only the (cheap) head is re-run with
gradients, outside inference mode, in float32. Works for both temporal modes:
- "reference": each frame is classified on its own, so each crop's map explains its own frame
  score (the target is the sum of per-frame FAKE-vs-REAL logit margins);
- "sequence": the target is the video's FAKE-vs-REAL margin, so each crop's map shows what in that
  frame pushed the whole sequence's verdict towards FAKE.
"""

from contextlib import contextmanager

import cv2
import numpy as np
import torch
import torch.nn.functional as F


@contextmanager
def capture_last_stage(model):
    """Collect the outputs of `model.model[7]` (one tensor per backbone call) while active."""
    outputs = []
    handle = model.model[7].register_forward_hook(lambda module, inputs, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


def cams_from_activations(model, activations, lengths, size):
    """Grad-CAM maps from last-stage activations (N, C, h, w) of crops grouped into `lengths`.

    Returns (N, size[0], size[1]) float32 in [0, 1] on the CPU (zeros where nothing points to FAKE).
    """
    config = model.config
    with torch.inference_mode(False), torch.enable_grad():
        # clone(): tensors made under inference_mode cannot take part in autograd.
        act = activations.detach().float().clone().requires_grad_()  # (N, C, h, w)
        feats = model.avgpool(act).flatten(1)  # (N, C), as DeepfakeDetector.features
        target = feats.new_zeros(())
        start = 0
        # cuDNN's RNN backward refuses to run in eval mode; the native kernels do not.
        with torch.backends.cudnn.flags(enabled=False):
            for length in lengths:
                video_logits, frame_logits = model.head(feats[start : start + length].unsqueeze(0))
                start += length
                if config.temporal == "reference":
                    margin = frame_logits[0, :, config.fake_index] - frame_logits[0, :, config.real_index]
                else:
                    margin = video_logits[0, config.fake_index] - video_logits[0, config.real_index]
                target = target + margin.sum()
        (grads,) = torch.autograd.grad(target, act)  # (N, C, h, w)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    cams = F.relu((weights * act.detach()).sum(dim=1, keepdim=True))  # (N, 1, h, w)
    cams = F.interpolate(cams, size=tuple(size), mode="bilinear", align_corners=False)[:, 0]  # (N, H, W)
    peak = cams.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return (cams / peak).cpu().numpy().astype(np.float32)


def fake_cams(model, x, lengths):
    """Grad-CAM maps for crops `x` (N, 3, H, W) grouped into sequences of `lengths` (sum = N)."""
    with torch.no_grad(), capture_last_stage(model) as outputs:
        model.features(x)
    return cams_from_activations(model, outputs[0], lengths, x.shape[-2:])


def overlay(crop_bgr, cam, alpha=0.45):
    """Blend a JET heatmap of `cam` (h, w) in [0, 1] onto a BGR uint8 crop; returns BGR uint8."""
    height, width = crop_bgr.shape[:2]
    cam = cv2.resize(
        np.clip(cam, 0.0, 1.0).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
    )
    heat = cv2.applyColorMap(np.uint8(np.round(255 * cam)), cv2.COLORMAP_JET)
    return cv2.addWeighted(np.ascontiguousarray(crop_bgr, dtype=np.uint8), 1 - alpha, heat, alpha, 0)


# Face detectors' boxes are tight (brows to lip, cheek to cheek): the face region is the ellipse
# inscribed in the box grown by this factor, so the forehead, chin and jaw line count as face.
FACE_GROW = 1.25


def face_ellipse(height, width, margin):
    """(height, width) bool mask of the face region of a crop cut with `margin`: the ellipse
    inscribed in the face box, grown by FACE_GROW.

    A crop is the face box plus `margin` of its size on each side, so the box fills the central
    1 / (1 + 2 margin) of each side (the frame's edge can clamp a crop; then this is approximate).
    With the shipped model's margin (0.25) the region is 55% of the crop.
    """
    share = FACE_GROW / (1.0 + 2.0 * margin)
    ys = (np.arange(height) + 0.5 - height / 2) / (share * height / 2)
    xs = (np.arange(width) + 0.5 - width / 2) / (share * width / 2)
    return ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0


def heat_in_face(cam, margin):
    """The share of a Grad-CAM map's heat (h, w) that lies inside the face ellipse, in [0, 1].

    A map with no heat at all (nothing pushed towards FAKE) counts as inside: there is nothing
    outside the face to warn about.
    """
    cam = np.clip(np.asarray(cam, dtype=np.float64), 0.0, None)
    total = cam.sum()
    if total <= 0:
        return 1.0
    return float(cam[face_ellipse(*cam.shape, margin)].sum() / total)
