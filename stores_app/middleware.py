"""Request guards: oversized bodies get 413 before anything parses them, and an unreachable Postgres
or Redis gets a 503 that says so (JSON with Retry-After for the API, a page for the dashboard)
instead of a bare 500."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.defaults import server_error as default_server_error
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# What is down, in the operator's words, by the exceptions its client raises.
OUTAGES = (
    ((RedisConnectionError, RedisTimeoutError), "redis", "the task queue and cache (Redis)"),
    ((OperationalError, InterfaceError), "database", "the database (Postgres)"),
)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


class RequestSizeMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if length > limit:
            message = f"The request body is {length} bytes; the limit is {limit} bytes. Send less data."
            if _is_api(request):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)


def outage_response(request, exc: BaseException) -> HttpResponse | None:
    """A 503 naming the unreachable service, or None when `exc` is not an outage."""
    found = next(((service, what) for types, service, what in OUTAGES if isinstance(exc, types)), None)
    if found is None:
        return None
    service, what = found
    log.warning("answering 503: %s is unreachable (%s)", service, type(exc).__name__)
    wait = settings.OUTAGE_RETRY_AFTER_SECONDS
    message = f"The service is temporarily unavailable: {what} cannot be reached. Try again in {wait} seconds."
    if _is_api(request):
        response: HttpResponse = JsonResponse({"detail": message, "unavailable": service}, status=503)
    else:
        # Rendered without the request: the user and the session live in the database that may be down.
        body = render_to_string("503.html", {"what": what, "wait": wait, "service": service})
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(wait)
    return response


class OutageMiddleware:
    """Turns a lost connection to Postgres or Redis in a view (rate limits, sessions, queries) into a 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return outage_response(request, exception)


def server_error(request):
    """handler500: an outage met outside a view (e.g. saving the session) is still a 503, not a 500."""
    response = outage_response(request, sys.exc_info()[1])
    return response if response is not None else default_server_error(request)
