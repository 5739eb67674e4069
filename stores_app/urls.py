"""Dashboard and API routes of the store domain."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import health, views
from .api.tokens import LogoutView, TokenLoginView
from .api.views import FleetVersionsView, RolloutViewSet, StoreViewSet

router = DefaultRouter()
router.register("stores", StoreViewSet, basename="api-store")
router.register("rollouts", RolloutViewSet, basename="api-rollout")

urlpatterns = [
    path("", views.store_list, name="store-list"),
    path("stores/new", views.store_create, name="store-create"),
    path("stores/rows", views.store_rows, name="store-rows"),
    path("stores/check-name", views.store_name_check, name="store-name-check"),
    path("stores/<int:pk>/", views.store_detail, name="store-detail"),
    path("stores/<int:pk>/progress", views.store_progress, name="store-progress"),
    path("stores/<int:pk>/health", views.store_health, name="store-health"),
    path("stores/<int:pk>/retry", views.store_retry, name="store-retry"),
    path("stores/<int:pk>/delete", views.store_delete, name="store-delete"),
    path("stores/<int:pk>/credentials", views.store_credentials, name="store-credentials"),
    path("stores/<int:pk>/upgrade", views.store_upgrade, name="store-upgrade"),
    path("stores/<int:pk>/pin", views.store_pin, name="store-pin"),
    path("rollouts/", views.rollout_list, name="rollout-list"),
    path("rollouts/new", views.rollout_create, name="rollout-create"),
    path("rollouts/<int:pk>/", views.rollout_detail, name="rollout-detail"),
    path("rollouts/<int:pk>/<str:change>", views.rollout_change, name="rollout-change"),
    path("audit/", views.audit_log, name="audit-log"),
    path("tokens/", views.api_tokens, name="api-tokens"),
    path("orphans/<int:pk>", views.orphan_action, name="orphan-action"),
    path("healthz/live", health.live, name="healthz-live"),
    path("healthz/ready", health.ready, name="healthz-ready"),
    path("api/auth/token/", TokenLoginView.as_view(), name="api-token-create"),
    path("api/auth/logout/", LogoutView.as_view(), name="api-token-revoke"),
    path("api/versions/", FleetVersionsView.as_view(), name="api-versions"),
    path("api/", include(router.urls)),
]
