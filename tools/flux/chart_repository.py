"""A Helm chart repository on loopback: the store charts packaged by `helm package`, indexed by
`helm repo index` and served over HTTP from a thread of this process, for Flux's source-controller.

It serves the very chart directories the orchestrator and the raw-helm baseline install from
(settings.STORE_CHARTS_DIR), so all three sides install the same bytes.
"""

from __future__ import annotations

import functools
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves files without a log line per request (a thousand HelmCharts fetch the chart)."""

    def log_message(self, format, *args):  # noqa: A002 (the base class's parameter name)
        pass


class ChartRepository:
    """Packages charts into `directory` and serves it at `url` until `stop()`."""

    def __init__(self, helm: str, directory: Path):
        self.helm = helm
        self.directory = directory
        self.versions: dict[str, str] = {}  # chart name -> packaged version
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self, charts: list[Path]) -> ChartRepository:
        """Bind a free loopback port first: the index carries the URL the charts are fetched from."""
        self.directory.mkdir(parents=True, exist_ok=True)
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        for chart in charts:
            self._package(chart)
        self._run(["repo", "index", str(self.directory), "--url", self.url])
        self._thread = threading.Thread(target=self._server.serve_forever, name="chart-repository", daemon=True)
        self._thread.start()
        return self

    def _package(self, chart: Path) -> None:
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        self._run(["package", str(chart), "--destination", str(self.directory)])
        self.versions[meta["name"]] = str(meta["version"])

    def _run(self, args: list[str]) -> None:
        result = subprocess.run([self.helm, *args], capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"helm {args[0]} failed: {result.stderr.strip()[-500:]}")

    def stop(self) -> None:
        if self._server is None:
            return
        if self._thread is not None:  # shutdown() waits for serve_forever, which only the thread runs
            self._server.shutdown()
            self._thread = None
        self._server.server_close()
        self._server = None
