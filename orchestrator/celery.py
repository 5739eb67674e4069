"""The Celery application; its configuration lives in Django settings (CELERY_*)."""

import os
from pathlib import Path

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")

app = Celery("orchestrator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class HeartbeatStep(bootsteps.StartStopStep):
    """Touches a file every few seconds so a Kubernetes probe can tell the worker is alive."""

    requires = {"celery.worker.components:Timer"}

    def start(self, worker) -> None:
        from django.conf import settings

        path = Path(settings.WORKER_HEARTBEAT_FILE)
        path.touch()
        self.tref = worker.timer.call_repeatedly(5.0, path.touch, priority=10)

    def stop(self, worker) -> None:
        if getattr(self, "tref", None) is not None:
            self.tref.cancel()


app.steps["worker"].add(HeartbeatStep)
