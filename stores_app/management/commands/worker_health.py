"""Exit 0 when the Celery worker's heartbeat file is fresh: the worker's Kubernetes probe."""

import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Check that this pod's Celery worker touched its heartbeat file recently."
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--max-age", type=float, default=30.0, help="Seconds (default 30).")

    def handle(self, *args, max_age, **options):
        path = Path(settings.WORKER_HEARTBEAT_FILE)
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            self.stderr.write(f"No heartbeat at {path}: the worker has not started.")
            sys.exit(1)
        if age > max_age:
            self.stderr.write(f"Heartbeat is {age:.0f}s old (limit {max_age:.0f}s): the worker is stuck.")
            sys.exit(1)
        self.stdout.write(f"Worker alive (heartbeat {age:.1f}s ago).")
