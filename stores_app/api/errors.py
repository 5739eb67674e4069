"""Turns errors into API responses with one shape: {"detail": what went wrong and how to fix it}, plus,
for invalid input, each field's own messages under the field's name."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from ..services import ServiceError


def _messages(detail) -> list[str]:
    if isinstance(detail, dict):
        return [m for key, value in detail.items() for m in _prefixed(key, _messages(value))]
    if isinstance(detail, list):
        return [m for item in detail for m in _messages(item)]
    return [str(detail)]


def _prefixed(key: str, messages: list[str]) -> list[str]:
    return messages if key in ("detail", "non_field_errors") else [f"{key}: {m}" for m in messages]


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        return Response({"detail": str(exc)}, status=exc.status_code)
    if isinstance(exc, ValidationError):
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {}
        # A field's messages as a list of text; a list field's items name their position ("3: …").
        body = {
            key: value if isinstance(value, str) else _messages(value)
            for key, value in fields.items()
            if key != "detail"
        }
        response.data = {"detail": " ".join(_messages(exc.detail)), **body}
    return response
