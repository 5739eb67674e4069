"""API representations. Input is validated by the same rules as the dashboard (naming/services)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from ..models import Engine, Store, StoreEvent
from ..naming import slug_for


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
    name = serializers.CharField(
        max_length=200,
        allow_blank=True,
        trim_whitespace=False,
        help_text="3–40 ASCII letters, digits, spaces or hyphens.",
    )
    engine = serializers.ChoiceField(choices=Engine.choices)

    def validate_name(self, value: str) -> str:
        try:
            slug_for(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value.strip()

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
