"""Top-level routes: dashboard, API and its schema/docs, admin, auth, metrics."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from stores_app import metrics
from stores_app.ratelimits import limited

urlpatterns = [
    # Before admin.site.urls, so the admin's own login form is limited like every other password check.
    path("admin/login/", limited("login")(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/login/", limited("login")(auth_views.LoginView.as_view()), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    # The schema and docs describe the API; they reveal no data, so they are public.
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[AllowAny]),
        name="api-docs",
    ),
    path("metrics", metrics.metrics_view, name="prometheus-django-metrics"),
    path("", include("stores_app.urls")),
]

# An unreachable Postgres or Redis met outside a view is answered 503, like inside one.
handler500 = "stores_app.middleware.server_error"
