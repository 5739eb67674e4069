"""HelmGateway: the store's Helm release through pyhelm3 and the helm CLI.

Values go to helm on stdin (pyhelm3 does that), so nothing about a store is
written to a values file on disk. Every helm failure is sorted here, once, into
temporary (retry with backoff) or permanent (fail the store with the reason).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import enum
import gzip
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pyhelm3
from django.conf import settings
from pyhelm3 import errors as helm_errors

log = logging.getLogger(__name__)


class HelmError(Exception):
    def __init__(self, message: str, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


class ReleaseState(enum.Enum):
    """What Helm's record of a release reduces to, for the reconciler."""

    ABSENT = "absent"
    DEPLOYED = "deployed"
    FAILED = "failed"
    PENDING = "pending"  # pending-install / pending-upgrade / pending-rollback
    UNINSTALLING = "uninstalling"
    OTHER = "other"


@dataclass
class ReleaseStatus:
    state: ReleaseState
    raw_status: str = ""
    revision: int | None = None
    updated: dt.datetime | None = None
    has_deployed_history: bool = False
    chart_version: str = ""  # filled by HelmGateway.metadata (helm status does not report it)
    app_version: str = ""

    def age_seconds(self) -> float:
        if self.updated is None:
            return float("inf")
        return (dt.datetime.now(dt.UTC) - self.updated).total_seconds()


# Helm's messages that say "try again later": locks, timeouts, an unreachable or busy API server.
_TEMPORARY = re.compile(
    r"another operation \(install/upgrade/rollback\) is in progress|timed out|deadline exceeded|"
    r"connection refused|connection reset|i/o timeout|tls handshake timeout|no route to host|"
    r"etcdserver|the server is currently unable|too many requests|unexpected eof|\beof\b|"
    r"service unavailable|internal error occurred|context canceled|the object has been modified|"
    r"client rate limiter",
    re.IGNORECASE,
)
_SECRET_LIKE = re.compile(r"(password|secret|token|key)([\"']?\s*[:=]\s*)\S+", re.IGNORECASE)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    message = lines[-1] if lines else "helm failed without a message"
    message = _SECRET_LIKE.sub(r"\1\2[redacted]", message)
    return message[:500]


def classify(exc: BaseException) -> HelmError:
    """Sort a pyhelm3/subprocess failure into temporary or permanent, with a readable reason."""
    if isinstance(exc, HelmError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return HelmError("helm did not finish in time", temporary=True)
    if isinstance(exc, helm_errors.Error):
        text = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc)
        message = _first_line(text)
        if isinstance(exc, (helm_errors.ConnectionError, helm_errors.CommandCancelledError)):
            return HelmError(message, temporary=True)
        if isinstance(
            exc,
            (
                helm_errors.FailedToRenderChartError,
                helm_errors.ChartNotFoundError,
                helm_errors.InvalidResourceError,
                helm_errors.ResourceAlreadyExistsError,
            ),
        ):
            return HelmError(message, temporary=False)
        if _TEMPORARY.search(text):
            return HelmError(message, temporary=True)
        # Killed by a signal: negative when direct, 128+N through the shell pyhelm3 uses.
        if exc.returncode is not None and (exc.returncode < 0 or exc.returncode in (128 + 9, 128 + 15)):
            return HelmError(f"helm was killed ({message})", temporary=True)
        return HelmError(message, temporary=False)
    if isinstance(exc, OSError):
        return HelmError(f"could not run helm: {exc.strerror or exc}", temporary=True)
    return HelmError(f"{type(exc).__name__}: {exc}", temporary=True)


def _parse_time(value) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


_STATES = {
    "deployed": ReleaseState.DEPLOYED,
    "failed": ReleaseState.FAILED,
    "pending-install": ReleaseState.PENDING,
    "pending-upgrade": ReleaseState.PENDING,
    "pending-rollback": ReleaseState.PENDING,
    "uninstalling": ReleaseState.UNINSTALLING,
    "uninstalled": ReleaseState.ABSENT,
}

_clients = threading.local()


def command_line(args: list[str]) -> list[str]:
    """helm's arguments as the gateway runs them: pyhelm3 builds them, and `helm upgrade` gets what pyhelm3
    cannot say (its own `disable_validation` adds the flag one character at a time)."""
    if args[:1] == ["upgrade"] and not settings.HELM_OPENAPI_VALIDATION:
        return [*args, "--disable-openapi-validation"]
    return list(args)


class _Command(pyhelm3.command.Command):
    async def run(self, command: list[str], input: bytes | None = None) -> bytes:  # noqa: A002 (pyhelm3's name)
        return await super().run(command_line(command), input)


class HelmGateway:
    """One pyhelm3 client per thread; all calls are synchronous wrappers over its coroutines."""

    def __init__(self) -> None:
        helm = getattr(_clients, "helm", None)
        if helm is None:
            kubeconfig = Path(settings.KUBECONFIG) if settings.KUBECONFIG else None
            helm = pyhelm3.Client(
                _Command(
                    executable=settings.HELM_BIN,
                    kubeconfig=kubeconfig,
                    default_timeout=f"{settings.HELM_TIMEOUT_SECONDS}s",
                    history_max_revisions=5,
                ),
                executable=settings.HELM_BIN,
            )
            _clients.helm = helm
            _clients.charts = {}
        self.client: pyhelm3.Client = helm
        self._charts: dict[str, pyhelm3.models.Chart] = _clients.charts

    def _run(self, coro, timeout: float | None = None):
        limit = timeout or settings.HELM_TIMEOUT_SECONDS + 30
        try:
            return asyncio.run(asyncio.wait_for(coro, timeout=limit))
        except Exception as exc:
            raise classify(exc) from exc

    def chart(self, engine: str):
        # Chart metadata is read once per process and chart version: `helm show chart` costs a subprocess.
        # Keyed by Chart.yaml's change time too, so charts replaced in place (a new target) are seen.
        path = Path(settings.STORE_CHARTS_DIR) / engine
        try:
            key = f"{path}@{(path / 'Chart.yaml').stat().st_mtime_ns}"
        except OSError:
            key = str(path)  # helm reports the missing chart, sorted as permanent
        if key not in self._charts:
            self._charts[key] = self._run(self.client.get_chart(str(path)))
        return self._charts[key]

    def status(self, namespace: str, release: str) -> ReleaseStatus:
        try:
            data = self._run(self.client._command.status(release, namespace=namespace))
        except HelmError as err:
            if "release: not found" in str(err).lower():
                return ReleaseStatus(ReleaseState.ABSENT)
            raise
        raw = data["info"]["status"]
        state = _STATES.get(raw, ReleaseState.OTHER)
        result = ReleaseStatus(
            state=state,
            raw_status=raw,
            revision=data.get("version"),
            updated=_parse_time(data["info"].get("last_deployed")),
        )
        if state in (ReleaseState.PENDING, ReleaseState.FAILED):
            result.has_deployed_history = self._has_deployed_history(namespace, release)
        return result

    def metadata(self, namespace: str, release: str) -> ReleaseStatus:
        """The release's latest revision like `status`, with its chart and app version (`helm get metadata`:
        a few hundred bytes, where `helm status` sends the whole manifest)."""
        try:
            raw = self._run(
                self.client._command.run(["get", "metadata", release, "--namespace", namespace, "--output", "json"])
            )
        except HelmError as err:
            if "release: not found" in str(err).lower():
                return ReleaseStatus(ReleaseState.ABSENT)
            raise
        data = json.loads(raw)
        status = data.get("status", "")
        result = ReleaseStatus(
            state=_STATES.get(status, ReleaseState.OTHER),
            raw_status=status,
            revision=data.get("revision"),
            updated=_parse_time(data.get("deployedAt")),
            chart_version=str(data.get("version") or ""),
            app_version=str(data.get("appVersion") or ""),
        )
        if result.state in (ReleaseState.PENDING, ReleaseState.FAILED):
            result.has_deployed_history = self._has_deployed_history(namespace, release)
        return result

    def _has_deployed_history(self, namespace: str, release: str) -> bool:
        history = self._run(self.client._command.history(release, namespace=namespace))
        return any(entry.get("status") in ("deployed", "superseded") for entry in history or [])

    def install_or_upgrade(self, namespace: str, release: str, engine: str, values: dict) -> int:
        chart = self.chart(engine)
        # Not Client.install_or_upgrade_release: it parses the whole rendered manifest with pure-Python
        # YAML to build a ReleaseRevision (about a second of CPU per store, in a worker slot). Only the
        # revision is needed, and `helm upgrade --output json` reports it as "version".
        status = self._run(
            self.client._command.install_or_upgrade(
                release,
                chart.ref,
                values,
                namespace=namespace,
                create_namespace=False,
                repo=chart.repo,
                version=chart.metadata.version,
                timeout=f"{settings.HELM_TIMEOUT_SECONDS}s",
                wait=False,
            )
        )
        return int(status["version"])

    def rollback(self, namespace: str, release: str, revision: int) -> None:
        """`helm rollback` to `revision` (a new revision with that one's manifest and values), without waiting:
        the orchestrator checks the rolled-back workloads itself, as after an install."""
        self._run(
            self.client._command.rollback(
                release, revision, namespace=namespace, timeout=f"{settings.HELM_TIMEOUT_SECONDS}s", wait=False
            )
        )

    def user_values(self, namespace: str, release: str) -> dict:
        """The values the deployed revision was given (`helm get values`), for stores from before the
        orchestrator recorded them. Credentials are never among them (they live in the store's Secret)."""
        raw = self._run(
            self.client._command.run(["get", "values", release, "--namespace", namespace, "--output", "json"])
        )
        return json.loads(raw) or {}

    def uninstall(self, namespace: str, release: str) -> bool:
        """Uninstall the release; a release that is not there counts as done. Returns True if one was removed."""
        try:
            self._run(
                self.client._command.uninstall(
                    release, namespace=namespace, timeout=f"{settings.HELM_TIMEOUT_SECONDS}s", wait=False
                )
            )
        except HelmError as err:
            if "not found" in str(err).lower():
                return False
            raise
        return True

    def mark_failed(self, namespace: str, release: str, revision: int, reason: str) -> None:
        """Unlock a stuck pending-* revision by marking it failed in Helm's own record (a Secret per revision).

        What Flux's helm-controller does for a release its own lost process left pending: the next
        `helm upgrade` then proceeds from the last deployed revision. A rollback would re-apply old
        manifests (this chart's setup Jobs are immutable and named per revision, so it fails).
        """
        from kubernetes import client

        from .kube import KubeError, _api_client, _classify

        core = client.CoreV1Api(_api_client())
        name = f"sh.helm.release.v1.{release}.v{revision}"
        try:
            secret = core.read_namespaced_secret(name, namespace, _request_timeout=20)
            record = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(secret.data["release"]))))
            record["info"]["status"] = "failed"
            record["info"]["description"] = f"Marked failed by the store orchestrator: {reason}"[:500]
            encoded = base64.b64encode(gzip.compress(json.dumps(record).encode())).decode()
            patch = {
                "metadata": {"labels": {"status": "failed"}},
                "data": {"release": base64.b64encode(encoded.encode()).decode()},
            }
            core.patch_namespaced_secret(name, namespace, patch, _request_timeout=20)
        except KubeError:
            raise
        except Exception as exc:
            err = _classify(exc, f"mark release {release} revision {revision} failed")
            raise HelmError(str(err), temporary=err.temporary) from exc

    def test(self, namespace: str, release: str) -> None:
        """Run the chart's `helm test` hook (the store's order smoke test)."""
        timeout = settings.HELM_TEST_TIMEOUT_SECONDS
        self._run(
            self.client._command.run(["test", release, "--namespace", namespace, "--timeout", f"{timeout}s"]),
            timeout=timeout + 30,
        )


def reset_clients() -> None:
    """Forget this thread's pyhelm3 client (after HELM_BIN or KUBECONFIG changed)."""
    _clients.__dict__.clear()
