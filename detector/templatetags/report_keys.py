"""{% report_signing_keys %}: the public keys reports are signed with, for the admin's index page."""

import logging

from django import template

from ..reports import signing

logger = logging.getLogger(__name__)
register = template.Library()


@register.inclusion_tag("admin/detector/_report_keys.html")
def report_signing_keys():
    try:
        keys = signing.published_keys()
    except OSError as exc:  # the key folder is unreadable: say so on the page, not with a 500
        logger.error("cannot read the report keys: %s", exc)
        return {"keys": [], "error": f"The report keys cannot be read: {exc.strerror or exc}"}
    current = signing.current_key().key_id
    return {"keys": list(reversed(keys)), "current": current, "error": ""}
