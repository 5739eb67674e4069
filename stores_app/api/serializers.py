"""API representations. Input is validated by the same rules as the dashboard (naming/services)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Engine, Store, StoreEvent
from ..naming import NAME_MAX, NAME_MIN, RESERVED_SLUGS, slug_for


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in word)


# The naming rules (stores_app/naming.py) as a JSON Schema pattern: ASCII letters, digits, spaces and
# hyphens, starting and ending with a letter or digit, and not one of the platform's reserved names.
NAME_PATTERN = (
    "^(?!(?:" + "|".join(_any_case(w) for w in sorted(RESERVED_SLUGS)) + ")$)[A-Za-z0-9][A-Za-z0-9 -]*[A-Za-z0-9]$"
)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong and how to fix it.")


class TextField(serializers.CharField):
    """Text only: a number or a boolean is refused, not turned into text (the schema says "string")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Send text here, not {type(data).__name__}.")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "minLength": NAME_MIN, "maxLength": NAME_MAX, "pattern": NAME_PATTERN})
class StoreNameField(TextField):
    """Checked by the naming rules themselves, whose messages say how to fix a name; the schema states them."""

    def run_validation(self, data=serializers.empty):
        if data == "":
            validate_name_rules(data)  # the rules' own message for an empty name, not DRF's
        return super().run_validation(data)


def validate_name_rules(value) -> str:
    try:
        return slug_for(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


class StoreEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = StoreEvent
        fields = ["id", "created_at", "step", "outcome", "message"]


class StoreSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True)
    url = serializers.CharField(read_only=True)
    admin_url = serializers.CharField(read_only=True)

    class Meta:
        model = Store
        fields = [
            "id",
            "name",
            "engine",
            "slug",
            "owner",
            "status",
            "status_message",
            "failure_reason",
            "namespace",
            "release_name",
            "helm_revision",
            "url",
            "admin_url",
            "created_at",
            "updated_at",
            "ready_at",
            "deleted_at",
        ]
        read_only_fields = fields


class StoreCreateSerializer(serializers.Serializer):
    name = StoreNameField(
        max_length=200,
        trim_whitespace=False,
        help_text="3–40 ASCII letters, digits, spaces or hyphens, starting and ending with a letter or digit; "
        "it becomes the store's address (<name>.<base domain>).",
    )
    engine = serializers.ChoiceField(choices=Engine.choices)

    def validate_name(self, value: str) -> str:
        validate_name_rules(value)
        if value != value.strip():
            raise serializers.ValidationError("The store name must not start or end with spaces.")
        return value

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"detail": 'Send a JSON object such as {"name": "Corner Shop", "engine": "woocommerce"}.'}
            )
        unknown = sorted(set(data) - {"name", "engine"})
        if unknown:
            raise serializers.ValidationError({key: "Unknown field; send only name and engine." for key in unknown})
        return super().to_internal_value(data)


class CredentialsSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()
    admin_url = serializers.CharField()
