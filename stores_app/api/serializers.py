"""API representations. Input is validated by the same rules as the dashboard (naming/services)."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Engine, Rollout, RolloutItem, Store, StoreEvent, StoreUpgrade
from ..naming import NAME_MAX, NAME_MIN, RESERVED_SLUGS, slug_for
from ..services import ROLLOUT_LIMITS, rollout_progress


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
    target_version = serializers.CharField(read_only=True, help_text="The chart version an upgrade would install.")
    update_available = serializers.BooleanField(read_only=True)

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
            "chart_version",
            "app_version",
            "target_version",
            "update_available",
            "upgrades_pinned",
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


class StoreUpgradeSerializer(serializers.ModelSerializer):
    rollout = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = StoreUpgrade
        fields = [
            "id",
            "state",
            "from_version",
            "from_revision",
            "to_version",
            "to_revision",
            "message",
            "rollout",
            "requested_at",
            "applied_at",
            "rollback_started_at",
            "finished_at",
        ]
        read_only_fields = fields


class PinSerializer(serializers.Serializer):
    pinned = serializers.BooleanField(
        help_text="true: rollouts leave the store on its version; false: they may upgrade it."
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict) or set(data) != {"pinned"}:
            raise serializers.ValidationError({"detail": 'Send {"pinned": true} or {"pinned": false}.'})
        return super().to_internal_value(data)


class RolloutItemSerializer(serializers.ModelSerializer):
    store_name = serializers.CharField(source="store.name", read_only=True)
    chart_version = serializers.CharField(source="store.chart_version", read_only=True)

    class Meta:
        model = RolloutItem
        fields = ["store", "store_name", "wave", "state", "chart_version", "message", "updated_at"]
        read_only_fields = fields


class RolloutSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True, default="")
    progress = serializers.SerializerMethodField()

    class Meta:
        model = Rollout
        fields = [
            "id",
            "engine",
            "target_version",
            "selection",
            "canary_size",
            "growth",
            "concurrency",
            "failure_threshold",
            "state",
            "state_message",
            "current_wave",
            "progress",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, rollout: Rollout) -> dict:
        """Stores per state, overall and per wave."""
        return rollout_progress(rollout)


class RolloutDetailSerializer(RolloutSerializer):
    items = RolloutItemSerializer(many=True, read_only=True)

    class Meta(RolloutSerializer.Meta):
        fields = [*RolloutSerializer.Meta.fields, "items"]
        read_only_fields = fields


ROLLOUT_FIELDS = {
    "engine",
    "target_version",
    "from_versions",
    "owners",
    "store_ids",
    "canary_size",
    "growth",
    "concurrency",
    "failure_threshold",
    "start",
}


# A chart version (semantic versioning): what Chart.yaml's `version` may hold.
VERSION_PATTERN = r"^[0-9A-Za-z.+-]+$"
VERSION_MESSAGE = "A chart version has only letters, digits, dots, plus signs and hyphens, e.g. 0.3.0."


def _bounded(name: str, default: int, help_text: str) -> serializers.IntegerField:
    low, high = ROLLOUT_LIMITS[name]
    message = f"{name} must be a whole number from {low} to {high}."
    return serializers.IntegerField(
        required=False,
        default=default,
        min_value=low,
        max_value=high,
        help_text=help_text,
        error_messages={"invalid": message, "min_value": message, "max_value": message, "max_string_length": message},
    )


class RolloutCreateSerializer(serializers.Serializer):
    engine = serializers.ChoiceField(choices=Engine.choices)
    target_version = serializers.RegexField(
        VERSION_PATTERN.replace("+$", "*$"),
        max_length=40,
        required=False,
        allow_blank=True,
        error_messages={"invalid": VERSION_MESSAGE},
        help_text="Defaults to (and must be) the chart in STORE_CHARTS_DIR.",
    )
    from_versions = serializers.ListField(
        child=serializers.RegexField(VERSION_PATTERN, max_length=40, error_messages={"invalid": VERSION_MESSAGE}),
        required=False,
        max_length=50,
    )
    owners = serializers.ListField(
        child=serializers.RegexField(
            r"^[\w.@+-]+$",
            max_length=150,
            error_messages={"invalid": "A user name has only letters, digits and @.+-_."},
        ),
        required=False,
        max_length=500,
    )
    store_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=5000)
    # services.ROLLOUT_LIMITS, stated here too so that the schema says them, with the services' message.
    canary_size = _bounded("canary_size", 1, "Stores in the first wave.")
    growth = _bounded("growth", 2, "Each next wave is this many times larger.")
    concurrency = _bounded("concurrency", 4, "Stores of a wave upgrading at once.")
    failure_threshold = _bounded(
        "failure_threshold", 0, "Pause when more than this % of a wave failed (0: any failure)."
    )
    start = serializers.BooleanField(required=False, default=True, help_text="false: plan only (state pending).")

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"detail": 'Send a JSON object such as {"engine": "woocommerce"}.'})
        unknown = sorted(set(data) - ROLLOUT_FIELDS)
        if unknown:
            allowed = ", ".join(sorted(ROLLOUT_FIELDS))
            raise serializers.ValidationError({key: f"Unknown field; allowed: {allowed}." for key in unknown})
        return super().to_internal_value(data)


class VersionCountSerializer(serializers.Serializer):
    chart_version = serializers.CharField()
    stores = serializers.IntegerField()
    behind = serializers.BooleanField()


class FleetVersionsSerializer(serializers.Serializer):
    engine = serializers.CharField()
    target = serializers.CharField()
    behind = serializers.IntegerField()
    versions = VersionCountSerializer(many=True)
