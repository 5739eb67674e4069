"""API views: stores (list/create/retrieve/delete, retry, events, credentials, upgrade, pin), rollouts and
the fleet's versions (staff). Thin callers of services.

Every response code an operation can give is in its schema (tests/dashboard/test_api_schema.py runs
schemathesis against the live schema with every check on)."""

from __future__ import annotations

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, Throttled
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import ratelimits, services
from ..models import Rollout, Store
from ..ratelimits import ThrottleFirstMixin
from .serializers import (
    CredentialsSerializer,
    ErrorSerializer,
    FleetVersionsSerializer,
    PinSerializer,
    RolloutCreateSerializer,
    RolloutDetailSerializer,
    RolloutSerializer,
    StoreCreateSerializer,
    StoreEventSerializer,
    StoreSerializer,
    StoreUpgradeSerializer,
)


class TokenScheme(KnoxTokenScheme):
    """The API's token authentication is knox's, plus last-use tracking: the same scheme in the schema."""

    target_class = "stores_app.api.authentication.TokenAuthentication"


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


# Invalid input: the summary in "detail", and each field's own messages under its name.
INVALID = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "Everything that was wrong, in one sentence."}},
    "additionalProperties": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]},
}


def _invalid(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=INVALID, description=description)


# What every operation may answer besides its own codes.
COMMON = {
    401: _error("Not authenticated: send `Authorization: Token <token>` (or sign in)"),
    429: _error("Too many requests; the Retry-After header says how many seconds to wait"),
}
ONE_STORE = {**COMMON, 404: _error("No such store among yours (another user's store answers 404 too)")}
CONFLICT = _error("The store is not in a state that allows this; the detail says which")


@extend_schema_view(
    list=extend_schema(responses={200: StoreSerializer(many=True), 400: _invalid("Invalid limit or offset"), **COMMON}),
    retrieve=extend_schema(responses={200: StoreSerializer, **ONE_STORE}),
)
class StoreViewSet(ThrottleFirstMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stores of the calling user (staff: all). Another user's store answers 404."""

    serializer_class = StoreSerializer
    parser_classes = [JSONParser]  # bodies are JSON, as the schema says
    queryset = Store.objects.none()  # tells the schema the id's type; requests use get_queryset
    # Any id reaches the view, so a malformed one ("0.5") is the API's JSON 404, not the site's page.
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        queryset = Store.objects.for_user(self.request.user).select_related("owner")
        if self.action == "list":
            queryset = queryset.live()
        return queryset

    @extend_schema(
        request=StoreCreateSerializer,
        responses={
            202: StoreSerializer,
            400: _invalid("Invalid input; the messages say what to fix"),
            403: _error("Quota reached: delete a store first"),
            409: _error("Name taken: the store's address is in use"),
            415: _error("The body is not JSON (send Content-Type: application/json)"),
            **COMMON,
        },
    )
    def create(self, request):
        """Accept a new store; provisioning continues in the background (202). Only a store actually
        created counts against the creation limit; invalid input does not."""
        serializer = StoreCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        wait = ratelimits.creation_wait(request)
        if wait is not None:
            raise Throttled(wait=wait)
        store = services.create_store(
            request.user, serializer.validated_data["name"], serializer.validated_data["engine"], request=request
        )
        ratelimits.count_creation(request)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={202: StoreSerializer, 409: CONFLICT, **ONE_STORE})
    def destroy(self, request, pk=None):
        """Start teardown (202); the store is marked deleted once nothing of it is left in the cluster."""
        store = services.delete_store(self.get_object(), request.user, request=request)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: StoreSerializer, 409: CONFLICT, **ONE_STORE})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Send a failed store back to provisioning (202)."""
        store = services.retry_store(self.get_object(), request.user, request=request)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            200: StoreEventSerializer(many=True),
            400: _invalid("Invalid limit or offset"),
            **ONE_STORE,
        }
    )
    @action(detail=True, methods=["get"], serializer_class=StoreEventSerializer)
    def events(self, request, pk=None):
        """The store's progress timeline, oldest first, a page at a time (limit/offset)."""
        store = self.get_object()
        page = self.paginate_queryset(store.events.all())
        return self.get_paginated_response(StoreEventSerializer(page, many=True).data)

    @extend_schema(
        request=None,
        responses={
            200: CredentialsSerializer,
            409: _error("The store has no credentials (yet, or any more)"),
            503: _error("The cluster could not be reached; try again"),
            **ONE_STORE,
        },
    )
    @action(detail=True, methods=["post"])
    def credentials(self, request, pk=None):
        """The store's admin login, read from its Kubernetes Secret; owner only, audited, never cached."""
        store = self.get_object()
        if store.owner_id != request.user.pk:
            raise NotFound()
        credentials = services.reveal_credentials(store, request.user, request=request)
        response = Response(CredentialsSerializer(credentials).data)
        response["Cache-Control"] = "no-store"
        return response

    @extend_schema(
        request=None,
        responses={
            202: StoreUpgradeSerializer,
            409: _error("Only a ready store behind today's chart can be upgraded; the detail says why not"),
            503: _error("Today's chart could not be read; try again"),
            **ONE_STORE,
        },
    )
    @action(detail=True, methods=["post"])
    def upgrade(self, request, pk=None):
        """Upgrade a ready store to today's chart (202); watch `status` and the events. On failure it is rolled
        back and ends ready on its old version, the failure in its events and `upgrades`."""
        record = services.upgrade_store(self.get_object(), request.user, request=request)
        return Response(StoreUpgradeSerializer(record).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses={
            200: StoreUpgradeSerializer(many=True),
            400: _invalid("Invalid limit or offset"),
            **ONE_STORE,
        }
    )
    @action(detail=True, methods=["get"], serializer_class=StoreUpgradeSerializer)
    def upgrades(self, request, pk=None):
        """The store's upgrades, newest first (versions, revisions, outcome and why it failed), a page at a
        time (limit/offset)."""
        store = self.get_object()
        page = self.paginate_queryset(store.upgrades.all())
        return self.get_paginated_response(StoreUpgradeSerializer(page, many=True).data)

    @extend_schema(
        request=PinSerializer,
        responses={
            200: StoreSerializer,
            400: _invalid('Send {"pinned": true} or {"pinned": false}'),
            409: CONFLICT,
            415: _error("The body is not JSON (send Content-Type: application/json)"),
            **ONE_STORE,
        },
    )
    @action(detail=True, methods=["post"])
    def pin(self, request, pk=None):
        """Pin the store (rollouts leave it on its version) or unpin it; the owner's alone."""
        store = self.get_object()
        if store.owner_id != request.user.pk:
            raise NotFound()
        serializer = PinSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        store = services.set_upgrades_pinned(store, serializer.validated_data["pinned"], request.user, request=request)
        return Response(StoreSerializer(store).data)


# Staff-only operations: a signed-in user who is not staff gets 403.
STAFF = {**COMMON, 403: _error("Staff only")}
ONE_ROLLOUT = {**STAFF, 404: _error("No such rollout")}
ROLLOUT_CONFLICT = _error("The rollout is not in a state that allows this; the detail says which")


@extend_schema_view(
    list=extend_schema(
        responses={200: RolloutSerializer(many=True), 400: _invalid("Invalid limit or offset"), **STAFF}
    ),
    retrieve=extend_schema(responses={200: RolloutDetailSerializer, **ONE_ROLLOUT}),
)
class RolloutViewSet(ThrottleFirstMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Fleet upgrades (staff only): plan and start, watch wave by wave, pause, resume, cancel."""

    permission_classes = [IsAdminUser]
    parser_classes = [JSONParser]
    queryset = Rollout.objects.select_related("created_by")
    # Any id reaches the view, so a malformed one is the API's JSON 404, not the site's page.
    lookup_value_regex = "[^/]+"

    def get_serializer_class(self):
        return RolloutDetailSerializer if self.action == "retrieve" else RolloutSerializer

    def get_object(self):
        pk = str(self.kwargs.get("pk", ""))
        if not pk.isdigit() or len(pk) > 18:  # what a bigint holds; anything else is no rollout
            raise NotFound("No such rollout")
        return super().get_object()

    @extend_schema(
        request=RolloutCreateSerializer,
        responses={
            201: RolloutDetailSerializer,
            400: _invalid("Invalid input; the messages say what to fix"),
            409: _error("A rollout of this engine is still open, or no store matches"),
            415: _error("The body is not JSON (send Content-Type: application/json)"),
            503: _error("Today's chart could not be read; try again"),
            **STAFF,
        },
    )
    def create(self, request):
        """Plan a rollout of today's chart to the selected stores (and start it unless `start` is false)."""
        serializer = RolloutCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rollout = services.create_rollout(request.user, services.RolloutSpec(**serializer.validated_data), request)
        return Response(RolloutDetailSerializer(rollout).data, status=status.HTTP_201_CREATED)

    def _act(self, request, change) -> Response:
        rollout = change(self.get_object(), request.user, request=request)
        return Response(RolloutSerializer(rollout).data)

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: ROLLOUT_CONFLICT, **ONE_ROLLOUT})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a pending rollout."""
        return self._act(request, services.start_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: ROLLOUT_CONFLICT, **ONE_ROLLOUT})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Start no more upgrades; those under way finish."""
        return self._act(request, services.pause_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: ROLLOUT_CONFLICT, **ONE_ROLLOUT})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Carry on from where it paused (the current wave's failures so far are accepted)."""
        return self._act(request, services.resume_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: ROLLOUT_CONFLICT, **ONE_ROLLOUT})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop for good; stores not started stay as they are, upgrades under way finish."""
        return self._act(request, services.cancel_rollout)


class FleetVersionsView(ThrottleFirstMixin, APIView):
    """How many live stores run each chart version, per engine, against today's target (staff only)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: FleetVersionsSerializer(many=True), **STAFF})
    def get(self, request):
        return Response(FleetVersionsSerializer(services.fleet_versions(), many=True).data)
