"""Abuse limits on django-ratelimit's counters in the shared Redis cache.

The dashboard and the API draw from the same per-user buckets, so switching surfaces gains nothing:
"read" for GET/HEAD/OPTIONS, "write" for every other method, and on top of those "create" for new
stores and "login" (per address) for password checks. Reads and writes are apart so that a dashboard
polling a store's progress never uses up the budget for changing things, and a burst of writes
never blinds the dashboard. "create" counts store creations, not attempts: a request is refused when
the bucket is full, but only a store actually created is counted, so a mistyped name costs nothing.
A refusal is a 429 with Retry-After; the first refusal in a window is audited.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.template.loader import render_to_string
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

from .models import AuditEntry

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 (an unknown caller, not a bind address)
# Some proxies write "address:port" ("[address]:port" for IPv6).
_WITH_PORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<v4>[0-9.]+)):[0-9]{1,5}$")


def _ip(value: str) -> str | None:
    """`value` as a normalised IP address, or None when it is not one."""
    match = _WITH_PORT.match(value)
    if match:
        value = match["v6"] or match["v4"]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_address(request) -> str:
    """The caller's address, for rate-limit buckets and the audit log.

    Each trusted proxy appends the address it got the request from to X-Forwarded-For, so the client
    is the entry TRUSTED_PROXY_COUNT places from the right; everything left of it is whatever the
    client sent and may be forged. Fewer entries than proxies (the request did not pass them all) or
    a malformed entry there (a proxy misbehaves): the connection's own address counts instead.
    """
    meta = request.META
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        # Empty entries are kept: dropping them would let "forged,," shift a forged entry into place.
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= hops:
            address = _ip(forwarded[-hops])
            if address is not None:
                return address
    return _ip(meta.get("REMOTE_ADDR") or "") or UNKNOWN_ADDRESS


def _key(group, request) -> str:
    if group == "stores:login":
        return f"ip:{client_address(request)}"  # before authentication: password guessing is per address
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_address(request)}"


def _rate(scope: str) -> str:
    rates = {
        "read": settings.RATELIMIT_READ,
        "write": settings.RATELIMIT_WRITE,
        "create": settings.RATELIMIT_CREATE,
        "login": settings.RATELIMIT_LOGIN,
    }
    return rates[scope]


def method_scope(request) -> str:
    """The bucket every request draws from: reads apart from writes."""
    return "read" if request.method in SAFE_METHODS else "write"


def check(request, scope: str) -> int | None:
    """Count this request against `scope`; return seconds to wait if it is over the limit."""
    usage = get_usage(request, group=f"stores:{scope}", key=_key, rate=_rate(scope), increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    wait = max(1, int(usage["time_left"]))
    _audit_once(request, scope, wait)
    return wait


def creation_wait(request) -> int | None:
    """Seconds to wait before another store may be created, or None; counts nothing (see count_creation)."""
    usage = get_usage(request, group="stores:create", key=_key, rate=_rate("create"), increment=False)
    if usage is None or usage["count"] < usage["limit"]:
        return None
    wait = max(1, int(usage["time_left"]))
    _audit_once(request, "create", wait)
    return wait


def count_creation(request) -> None:
    """Count a store that was created against the creator's "create" bucket."""
    get_usage(request, group="stores:create", key=_key, rate=_rate("create"), increment=True)


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
    """Dashboard view decorator: the read or write bucket, plus the named scopes for writes."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            extra = scopes if request.method not in SAFE_METHODS else ()
            for scope in (method_scope(request), *extra):
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
        # Store creations are limited by the view itself, once the input is valid (creation_wait).
        wait = check(request, method_scope(request))
        if wait is not None:
            self._wait = wait
            return False
        return True

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)
