"""Adjustments to the generated OpenAPI schema that drf-spectacular cannot derive from the code."""

from __future__ import annotations

from ..naming import NAME_MIN

# Request bodies whose serializers refuse unknown fields (they answer 400 naming the field).
CLOSED_REQUEST_BODIES = ("StoreCreateRequest", "TokenRequestRequest", "PinRequest", "RolloutCreateRequest")


def closed_request_bodies(result, generator, request, public):
    """Say in the schema what the serializers enforce: no properties besides the documented ones."""
    schemas = result.get("components", {}).get("schemas", {})
    for name in CLOSED_REQUEST_BODIES:
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    # drf-spectacular writes minLength 1 for any required text; the naming rules' minimum is larger.
    store_name = schemas.get("StoreCreateRequest", {}).get("properties", {}).get("name")
    if store_name is not None:
        store_name["minLength"] = NAME_MIN
    return result
