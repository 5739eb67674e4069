"""The Celery application; its configuration lives in Django settings (CELERY_*)."""

import logging
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


class ResumeOnConnectStep(bootsteps.StartStopStep):
    """Each time the worker connects to the broker (at start, and again after Redis came back), it asks
    the reconciler to resume at once what may have been dropped: a crashed worker's tasks, and the
    delayed tasks this worker held, which went with the lost connection."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer) -> None:
        from stores_app.tasks import reconcile_stores

        try:
            reconcile_stores.apply_async(kwargs={"resume_queued": True})
        except Exception:  # the broker went away again: the next connection asks again
            logging.getLogger(__name__).warning("could not queue the reconciler on connect", exc_info=True)


app.steps["worker"].add(HeartbeatStep)
app.steps["consumer"].add(ResumeOnConnectStep)
