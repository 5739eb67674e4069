"""App configuration: audit signal handlers and the store metrics collector."""

from django.apps import AppConfig


class StoresAppConfig(AppConfig):
    name = "stores_app"
    verbose_name = "Stores"

    def ready(self) -> None:
        from prometheus_client import REGISTRY

        from . import signals  # noqa: F401
        from .metrics import StoreCollector

        if not getattr(REGISTRY, "_store_collector_registered", False):
            REGISTRY.register(StoreCollector())
            REGISTRY._store_collector_registered = True
