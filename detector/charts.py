"""Per-frame fake-probability chart as inline SVG, drawn on the server (no JS, no CDN)."""

from django.template.defaultfilters import floatformat
from django.utils.html import format_html, format_html_join

FAKE_COLOUR = "#dc3545"
SCORE_COLOUR = "#6f42c1"
REAL_COLOUR = "#198754"
LINE_COLOUR = "#0d6efd"


def frame_probability_svg(
    probabilities,
    timestamps=None,
    *,
    threshold=0.5,
    width=720,
    height=220,
    label="",
    score=None,
    interval=None,
):
    """An SVG line chart of fake probability (0..1) per analysed frame, with the decision threshold.

    `timestamps` (seconds) label the x axis when given; points above the threshold are red.
    `score`: the person's score made from these frames, drawn as a solid purple line across the
    plot so the headline figure can be read against the dots; `interval` (low, high): its likely
    range, a shaded band. Returns safe HTML; every number is formatted by us, every text goes
    through format_html.
    """
    probabilities = [min(1.0, max(0.0, float(p))) for p in (probabilities or [])]
    if not probabilities:
        return ""
    timestamps = list(timestamps or [])
    if len(timestamps) != len(probabilities):
        timestamps = []
    # The right margin holds the threshold's label, outside the plot where no point can sit under it.
    left, right, top, bottom = 44, 66, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    count = len(probabilities)

    # Coordinates are formatted to strings here: format_html escapes its arguments, so it
    # cannot apply numeric format specs itself.
    def x_at(i):
        return f"{left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2):.1f}"

    def y_at(p):
        return f"{top + plot_h * (1.0 - p):.1f}"

    grid = format_html_join(
        "",
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#dee2e6" stroke-width="1"/>'
        '<text x="{}" y="{}" font-size="11" text-anchor="end" fill="#6c757d">{}</text>',
        (
            (left, y_at(v), left + plot_w, y_at(v), left - 6, f"{float(y_at(v)) + 4:.1f}", f"{v:g}")
            for v in (0.0, 0.25, 0.5, 0.75, 1.0)
        ),
    )
    threshold_line = format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.5" '
        'stroke-dasharray="6 4"/>'
        '<text x="{}" y="{}" font-size="11" fill="{}">'
        '<tspan x="{}" dy="-2">threshold</tspan><tspan x="{}" dy="12">{}</tspan></text>',
        left,
        y_at(threshold),
        left + plot_w,
        y_at(threshold),
        FAKE_COLOUR,
        left + plot_w + 6,
        y_at(threshold),
        FAKE_COLOUR,
        left + plot_w + 6,
        left + plot_w + 6,
        # Rounded as the page rounds it (floatformat: 0.695 is 0.70 in both).
        floatformat(threshold, 2),
    )
    score_band = ""
    if interval is not None:
        low, high = (min(1.0, max(0.0, float(v))) for v in interval)
        score_band = format_html(
            '<rect class="score-range" x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="0.12">'
            "<title>likely range of the score: {}–{}</title></rect>",
            left,
            y_at(high),
            plot_w,
            f"{plot_h * (high - low):.1f}",
            SCORE_COLOUR,
            floatformat(low, 2),
            floatformat(high, 2),
        )
    score_line = ""
    if score is not None:
        score = min(1.0, max(0.0, float(score)))
        score_line = format_html(
            '<line class="score-line" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2">'
            "<title>score: {}</title></line>",
            left,
            y_at(score),
            left + plot_w,
            y_at(score),
            SCORE_COLOUR,
            floatformat(score, 2),
        )
    points = " ".join(f"{x_at(i)},{y_at(p)}" for i, p in enumerate(probabilities))
    line = format_html(
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>', LINE_COLOUR, points
    )

    def point_title(i, p):
        when = f" at {timestamps[i]:.2f} s" if timestamps else ""
        return f"frame {i + 1}{when}: {p:.3f}"

    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="3.5" fill="{}"><title>{}</title></circle>',
        (
            (x_at(i), y_at(p), FAKE_COLOUR if p >= threshold else REAL_COLOUR, point_title(i, p))
            for i, p in enumerate(probabilities)
        ),
    )
    # About six x labels, whatever the frame count; the last frame always has one, and the regular
    # label before it gives way when the two would be closer than half a step (they would collide).
    step = max(1, round(count / 6))
    ticks = list(range(0, count, step))
    if ticks[-1] != count - 1:
        if len(ticks) > 1 and count - 1 - ticks[-1] < step / 2:
            ticks.pop()
        ticks.append(count - 1)
    x_labels = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#6c757d">{}</text>',
        ((x_at(i), top + plot_h + 16, f"{timestamps[i]:.1f}s" if timestamps else str(i + 1)) for i in ticks),
    )
    axis_title = "time in the video" if timestamps else "analysed frame"
    title = label or f"Fake probability for {count} analysed frames"
    return format_html(
        '<svg class="frame-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="100%" '
        'role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet"><title>{}</title>'
        "{}{}{}{}{}{}{}"
        '<text x="{}" y="{}" font-size="11" text-anchor="middle" fill="#6c757d">{}</text></svg>',
        width,
        height,
        title,
        title,
        grid,
        score_band,
        threshold_line,
        score_line,
        line,
        dots,
        x_labels,
        f"{left + plot_w / 2:.1f}",
        height - 2,
        axis_title,
    )
