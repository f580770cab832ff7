"""The per-frame probability chart: server-drawn inline SVG."""

from detector.charts import frame_probability_svg


def test_it_draws_one_point_per_frame_coloured_by_the_threshold():
    svg = frame_probability_svg([0.1, 0.9, 0.5], [0.0, 0.5, 1.0], threshold=0.5)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == 3
    assert svg.count('fill="#dc3545"><title>') == 2  # 0.9 and 0.5 are at or above the threshold
    assert "threshold 0.50" in svg
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
