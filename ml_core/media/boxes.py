"""Face boxes as (top, right, bottom, left) in full-resolution pixels: clamping, area, overlap."""


def clamp_box(box, width, height):
    top, right, bottom, left = box
    top, bottom = max(0, min(height, top)), max(0, min(height, bottom))
    left, right = max(0, min(width, left)), max(0, min(width, right))
    return top, right, bottom, left


def box_area(box):
    return max(0, box[2] - box[0]) * max(0, box[1] - box[3])


def iou(a, b):
    top, left = max(a[0], b[0]), max(a[3], b[3])
    bottom, right = min(a[2], b[2]), min(a[1], b[1])
    inter = max(0, bottom - top) * max(0, right - left)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0
