"""The per-frame probability chart: server-drawn inline SVG."""

import re

from detector.charts import frame_probability_svg


def numbers(pattern, svg):
    return [float(v) for v in re.findall(pattern, svg)]


def test_it_draws_one_point_per_frame_coloured_by_the_threshold():
    svg = frame_probability_svg([0.1, 0.9, 0.5], [0.0, 0.5, 1.0], threshold=0.5)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 3
    assert svg.count('fill="#dc3545"><title>') == 2  # 0.9 and 0.5 are at or above the threshold
    assert ">threshold</tspan>" in svg and ">0.50</tspan>" in svg
    assert "frame 2 at 0.50 s: 0.900" in svg


def test_probabilities_map_to_the_plot_height():
    svg = frame_probability_svg([0.0, 1.0], height=220)
    # top margin 12, plot height 220 - 12 - 34 = 174: p=1 at y=12, p=0 at y=186
    assert 'cy="186.0"' in svg and 'cy="12.0"' in svg


def test_a_single_frame_and_out_of_range_values_still_draw():
    svg = frame_probability_svg([1.7])
    assert svg.count("<circle") == 1 and 'cy="12.0"' in svg


def test_no_probabilities_draw_nothing():
    assert frame_probability_svg([]) == ""


def test_labels_are_escaped():
    svg = frame_probability_svg([0.5], label='<script>alert("x")</script>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_mismatched_timestamps_fall_back_to_frame_numbers():
    svg = frame_probability_svg([0.2, 0.3], [0.0])
    assert "analysed frame" in svg and "time in the video" not in svg


def test_the_threshold_label_sits_beside_the_plot_clear_of_every_point():
    # Points hugging the threshold at the right end, where the label used to be drawn over them.
    svg = frame_probability_svg([0.6, 0.7, 0.68, 0.71, 0.7], threshold=0.695)
    rightmost_point = max(numbers(r'<circle cx="([\d.]+)"', svg))
    (label_x,) = set(numbers(r'<tspan x="([\d.]+)"', svg))
    assert label_x > rightmost_point + 3.5
    # The label is rounded as the page rounds the threshold (floatformat), not 0.69.
    assert ">0.70</tspan>" in svg


def test_time_labels_never_crowd_each_other():
    for count in range(2, 101):
        svg = frame_probability_svg([0.5] * count, [i * 1.45 for i in range(count)])
        xs = numbers(r'<text x="([\d.]+)" y="[\d.]+" font-size="11" text-anchor="middle"[^>]*>[\d.]+s<', svg)
        assert xs[0] == 44.0 and len(xs) >= 2, count
        assert min(b - a for a, b in zip(xs, xs[1:])) >= 45, f"{count} frames: labels at {xs}"
