"""Refuses oversized request bodies up front with 413 and a message, before anything parses them."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse


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
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)
