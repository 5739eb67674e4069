"""API views: list/create/retrieve/delete stores, retry, events, credentials. Thin callers of services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from .. import services
from ..models import Store
from ..ratelimits import ThrottleFirstMixin
from .serializers import CredentialsSerializer, StoreCreateSerializer, StoreEventSerializer, StoreSerializer


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
