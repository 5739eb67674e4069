"""API views: stores (list/create/retrieve/delete, retry, events, credentials, upgrade, pin), rollouts and
the fleet's versions (staff). Thin callers of services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..models import Rollout, Store
from ..ratelimits import ThrottleFirstMixin
from .serializers import (
    CredentialsSerializer,
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


class StoreViewSet(ThrottleFirstMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Stores of the calling user (staff: all). Another user's store answers 404."""

    serializer_class = StoreSerializer

    def get_queryset(self):
        queryset = Store.objects.for_user(self.request.user).select_related("owner")
        if self.action == "list":
            queryset = queryset.live()
        return queryset

    @extend_schema(
        request=StoreCreateSerializer,
        responses={
            202: StoreSerializer,
            400: OpenApiResponse(),
            403: OpenApiResponse(description="Quota reached"),
            409: OpenApiResponse(description="Name taken"),
        },
    )
    def create(self, request):
        """Accept a new store; provisioning continues in the background (202)."""
        serializer = StoreCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        store = services.create_store(
            request.user, serializer.validated_data["name"], serializer.validated_data["engine"], request=request
        )
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={202: StoreSerializer, 409: OpenApiResponse()})
    def destroy(self, request, pk=None):
        """Start teardown (202); the store is marked deleted once nothing of it is left in the cluster."""
        store = services.delete_store(self.get_object(), request.user, request=request)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: StoreSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Send a failed store back to provisioning (202)."""
        store = services.retry_store(self.get_object(), request.user, request=request)
        return Response(StoreSerializer(store).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=StoreEventSerializer(many=True))
    @action(detail=True, methods=["get"])
    def events(self, request, pk=None):
        """The store's progress timeline, oldest first."""
        store = self.get_object()
        return Response(StoreEventSerializer(store.events.all(), many=True).data)

    @extend_schema(request=None, responses={200: CredentialsSerializer, 409: OpenApiResponse()})
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
        request=None, responses={202: StoreUpgradeSerializer, 409: OpenApiResponse(), 503: OpenApiResponse()}
    )
    @action(detail=True, methods=["post"])
    def upgrade(self, request, pk=None):
        """Upgrade a ready store to today's chart (202); watch `status` and the events. On failure it is rolled
        back and ends ready on its old version, the failure in its events and `upgrades`."""
        record = services.upgrade_store(self.get_object(), request.user, request=request)
        return Response(StoreUpgradeSerializer(record).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=StoreUpgradeSerializer(many=True))
    @action(detail=True, methods=["get"])
    def upgrades(self, request, pk=None):
        """The store's upgrades, newest first: versions, revisions, outcome and why it failed."""
        store = self.get_object()
        return Response(StoreUpgradeSerializer(store.upgrades.all()[:50], many=True).data)

    @extend_schema(request=PinSerializer, responses={200: StoreSerializer, 409: OpenApiResponse()})
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


class RolloutViewSet(ThrottleFirstMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Fleet upgrades (staff only): plan and start, watch wave by wave, pause, resume, cancel."""

    permission_classes = [IsAdminUser]
    queryset = Rollout.objects.select_related("created_by")

    def get_serializer_class(self):
        return RolloutDetailSerializer if self.action == "retrieve" else RolloutSerializer

    @extend_schema(
        request=RolloutCreateSerializer,
        responses={201: RolloutDetailSerializer, 400: OpenApiResponse(), 409: OpenApiResponse()},
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

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a pending rollout."""
        return self._act(request, services.start_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Start no more upgrades; those under way finish."""
        return self._act(request, services.pause_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Carry on from where it paused (the current wave's failures so far are accepted)."""
        return self._act(request, services.resume_rollout)

    @extend_schema(request=None, responses={200: RolloutSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Stop for good; stores not started stay as they are, upgrades under way finish."""
        return self._act(request, services.cancel_rollout)


class FleetVersionsView(ThrottleFirstMixin, APIView):
    """How many live stores run each chart version, per engine, against today's target (staff only)."""

    permission_classes = [IsAdminUser]

    @extend_schema(responses=FleetVersionsSerializer(many=True))
    def get(self, request):
        return Response(FleetVersionsSerializer(services.fleet_versions(), many=True).data)
