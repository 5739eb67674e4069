"""Template filters of the dashboard: durations people read at a glance, audit details as text."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils import timezone

register = template.Library()

# Audit detail keys in words; anything else is shown with its key as it is.
DETAIL_LABELS = {
    "engine": "engine",
    "reason": "reason",
    "message": "message",
    "scope": "limit",
    "rate": "rate",
    "path": "page",
    "name": "name",
    "via": "via",
    "namespace": "namespace",
    "step": "step",
    "tokens": "tokens",
    "username": "user name",
    "change": "change",
}


@register.filter
def duration(seconds) -> str:
    """12 → "12 s", 95 → "1 min 35 s", 4000 → "1 h 6 min"; empty for nothing."""
    if seconds in (None, ""):
        return ""
    total = max(0, int(round(float(seconds))))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


@register.filter
def seconds_from_now(seconds) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=int(seconds or 0))


@register.filter
def details_text(details) -> str:
    """An audit entry's details as "engine: medusa · reason: …" instead of a Python dict."""
    if not isinstance(details, dict) or not details:
        return ""
    parts = []
    for key, value in details.items():
        label = DETAIL_LABELS.get(key, key.replace("_", " "))
        parts.append(f"{label}: {value}")
    return " · ".join(parts)


@register.filter
def percent_class(percent) -> str:
    """How full a quota bar is, for its colour."""
    value = int(percent or 0)
    return "high" if value >= 90 else "mid" if value >= 70 else "low"
