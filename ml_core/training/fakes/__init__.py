"""Fakes we make ourselves from real clips, whole videos at a time.

Detectors trained only on public fakes learn those datasets' quirks. Here every fake is made
from one of our own real clips, a few seconds long, with classic graphics methods:

- `swap`: another person's face warped onto the target (FaceForensics++'s FaceSwap pipeline);
- `mouth`: the same person's mouth from another moment of the same clip (Face2Face-like).

The untouched target segment is written through the same encoder next to each fake
(`generate`), so a real and its fake differ only by the manipulation. `landmarks` finds
and tracks the 68 points both kinds need; `blending` holds the mask and colour steps they share;
`reader` lists a generated folder as a `VideoDataset`.
"""
