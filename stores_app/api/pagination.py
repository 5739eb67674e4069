"""Paging of API lists: `limit` and `offset` are checked (not silently replaced by defaults), and the
schema says which values are allowed, so a client learns of a mistake instead of getting another page."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 1000


def _parse(request, name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    bounds = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: f"{name} must be a whole number {bounds}; got {raw[:20]!r}."})
    if value < minimum or (maximum is not None and value > maximum):
        raise ValidationError({name: f"{name} must be a whole number {bounds}; got {value}."})
    return value


class StrictLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request):
        return _parse(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request):
        return _parse(request, self.offset_query_param, 0, 0, None)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            schema = parameter.setdefault("schema", {})
            if parameter["name"] == self.limit_query_param:
                schema.update({"minimum": 1, "maximum": self.max_limit, "default": self.default_limit})
                parameter["description"] = f"Number of results per page (1–{self.max_limit})."
            elif parameter["name"] == self.offset_query_param:
                schema.update({"minimum": 0, "default": 0})
                parameter["description"] = "Index of the first result to return (0 or more)."
        return parameters
