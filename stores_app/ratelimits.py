"""Abuse limits on django-ratelimit's counters in the shared Redis cache.

The dashboard and the API draw from the same per-user buckets ("default" for
every request, "create" for new stores), so switching surfaces gains nothing.
A refusal is a 429 with Retry-After; the first refusal in a window is audited.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.template.loader import render_to_string
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from .models import AuditEntry


def client_address(request) -> str:
    """The caller's address; X-Forwarded-For is believed only for the configured proxy count."""
    meta = request.META
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return meta.get("REMOTE_ADDR") or "0.0.0.0"  # noqa: S104 (an unknown caller, not a bind address)


def _key(group, request) -> str:
    if group == "stores:login":
        return f"ip:{client_address(request)}"  # before authentication: password guessing is per address
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_address(request)}"


def _rate(scope: str) -> str:
    rates = {"create": settings.RATELIMIT_CREATE, "login": settings.RATELIMIT_LOGIN}
    return rates.get(scope, settings.RATELIMIT_DEFAULT)


def check(request, scope: str) -> int | None:
    """Count this request against `scope`; return seconds to wait if it is over the limit."""
    usage = get_usage(request, group=f"stores:{scope}", key=_key, rate=_rate(scope), increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    wait = max(1, int(usage["time_left"]))
    _audit_once(request, scope, wait)
    return wait


def _audit_once(request, scope: str, wait: int) -> None:
    from . import audit

    marker = f"ratelimit-audited:{scope}:{_key(None, request)}"
    if cache.add(marker, 1, wait):
        audit.record(
            AuditEntry.Action.RATE_LIMITED,
            outcome=AuditEntry.Outcome.DENIED,
            request=request,
            scope=scope,
            rate=_rate(scope),
            path=request.path[:200],
        )


def too_many_requests(request, wait: int) -> HttpResponse:
    body = render_to_string("429.html", {"wait": wait}, request=request)
    response = HttpResponse(body, status=429)
    response["Retry-After"] = str(wait)
    return response


def limited(*scopes: str):
    """Dashboard view decorator: apply the named scopes (besides "default") to non-GET requests too."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            for scope in ("default", *scopes):
                if scope != "default" and request.method != "POST":
                    continue
                wait = check(request, scope)
                if wait is not None:
                    return too_many_requests(request, wait)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


class ThrottleFirstMixin:
    """Check rate limits before permissions, so anonymous and unauthorised callers are limited too."""

    def check_permissions(self, request):
        self.check_throttles(request)
        self._throttles_checked = True
        super().check_permissions(request)

    def check_throttles(self, request):
        if not getattr(self, "_throttles_checked", False):
            super().check_throttles(request)


class UserRateThrottle(BaseThrottle):
    """DRF throttle over the same django-ratelimit counters; DRF adds Retry-After from wait()."""

    def allow_request(self, request, view) -> bool:
        scopes = ["default"]
        if getattr(view, "action", None) == "create" and request.method == "POST":
            scopes.append("create")
        for scope in scopes:
            wait = check(request, scope)
            if wait is not None:
                self._wait = wait
                return False
        return True

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
