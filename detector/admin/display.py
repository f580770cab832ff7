"""Display helpers shared by the admin pages: media links, numbers, model labels, small tables."""

from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join


def media_url(name, **kwargs):
    """URL of one of the web app's owner/staff-checked media views; None if it is not installed."""
    try:
        return reverse(name, kwargs=kwargs)
    except NoReverseMatch:
        return None


def probability(value):
    return "—" if value is None else f"{value:.3f}"


def moment(value):
    """A date and time in the site's time zone, short: "2026-12-06 20:56"."""
    return "—" if value is None else timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def model_label(result):
    return f"{result.model_name} ({result.model_sha256[:12]})"


def table(headers, rows):
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)
