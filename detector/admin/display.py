"""Display helpers shared by the admin pages: media links, numbers, model labels, tables, charts."""

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join


def media_url(name, **kwargs):
    """URL of one of the web app's owner/staff-checked media views; None if it is not installed."""
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return None


def probability(value):
    return "—" if value is None else f"{value:.3f}"


def model_label(result):
    return f"{result.model_name} ({result.model_sha256[:12]})"


def table(headers, rows):
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


def probability_chart(probabilities, threshold=0.5, width=480, height=120):
    """A small inline SVG line chart of per-frame fake probabilities (no JavaScript, no CDN)."""
    if not probabilities:
        return "—"
    step = width / max(len(probabilities) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{(1 - min(max(p, 0.0), 1.0)) * height:.1f}" for i, p in enumerate(probabilities)
    )
    threshold_y = (1 - threshold) * height
    return format_html(
        '<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
        'aria-label="Fake probability per sampled frame" style="border:1px solid #ccc;background:#fff">'
        '<line x1="0" y1="{t}" x2="{w}" y2="{t}" stroke="#999" stroke-dasharray="4"/>'
        '<polyline points="{points}" fill="none" stroke="#c0392b" stroke-width="2"/></svg>'
        "<div>0 = real, 1 = fake; dashed line: threshold {threshold}</div>",
        w=width,
        h=height,
        t=f"{threshold_y:.1f}",
        points=points,
        threshold=threshold,
    )
