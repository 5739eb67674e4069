"""Where the benchmark runs: its own database, Redis databases, settings and orchestrator processes.

Nothing here touches the development database or the Redis databases the tests use: the benchmark
gets a database of its own (dropped and created at every run) and three Redis databases counted from
`redis_db_base` (cache and rate-limit counters, the broker the workers consume, and a "sink" broker no
worker reads, for the API section).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .procs import MemorySampler, Proc, free_port, wait_until

REPO = Path(__file__).resolve().parents[3]
PYTHON = str(REPO / ".venv" / "bin" / "python")
UNLIMITED = "1000000/1m"


@dataclass
class Config:
    n: int = 20
    engines: list[str] = field(default_factory=lambda: ["woocommerce"])
    users: int = 4
    parallelism: int = 0  # 0: all N at once
    worker_processes: int = 1
    concurrency: int = 2
    web_workers: int = 2
    web_threads: int = 4
    api_stores: int = 1000
    api_requests: int = 300
    timeout: float = 1200.0
    sections: list[str] = field(default_factory=lambda: ["orchestrator", "baseline", "api"])
    baseline_first: bool = False
    profile: bool = False
    db_name: str = "orchestrator_bench"
    redis_db_base: int = 10
    out_dir: Path = REPO / "results"
    run_id: str = ""
    label: str = ""
    skip_capacity_check: bool = False
    flux_concurrent: int = 10
    checkpoint: int = 100  # ready stores at which the live-store figures are taken on the way (0: none)
    resize_cluster: bool = False  # add simulated nodes when the stores do not fit

    @property
    def effective_parallelism(self) -> int:
        return self.parallelism if self.parallelism > 0 else self.n

    @property
    def worker_slots(self) -> int:
        return self.worker_processes * self.concurrency


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


class Environment:
    """Database, settings and processes of one benchmark run."""

    def __init__(self, cfg: Config, run_dir: Path):
        self.cfg = cfg
        self.run_dir = run_dir
        self.log_dir = run_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base_db = os.environ.get("DATABASE_URL", "postgres://orchestrator@127.0.0.1:54320/orchestrator")
        base_redis = os.environ.get("REDIS_URL", "redis://127.0.0.1:63790/0")
        self.admin_db_url = _with_path(base_db, "/postgres")
        self.db_url = _with_path(base_db, f"/{cfg.db_name}")
        self.cache_url = _with_path(base_redis, f"/{cfg.redis_db_base}")
        self.broker_url = _with_path(base_redis, f"/{cfg.redis_db_base + 1}")
        self.sink_broker_url = _with_path(base_redis, f"/{cfg.redis_db_base + 2}")
        self.kubeconfig = os.environ.get("KUBECONFIG", "")
        self.helm = os.environ.get("HELM_BIN") or shutil.which("helm") or ""
        if not self.kubeconfig or not Path(self.kubeconfig).is_file():
            raise SystemExit("bench: KUBECONFIG must name the cluster (tools/dev/bench.sh starts the simulated one)")
        if not self.helm:
            raise SystemExit("bench: no helm: set HELM_BIN or put helm on PATH")
        self.memory = MemorySampler(interval=1.0)
        self.procs: list[Proc] = []
        self.web_url = ""
        # The run's own copy of the store charts (STORE_CHARTS_DIR of every process), whose versions the
        # rollout section moves (benchlib/rollout.py).
        from .rollout import copy_charts

        self.charts_dir = copy_charts(REPO / "charts", run_dir / "charts")

    # --- settings -------------------------------------------------------------------
    def process_env(self, broker_url: str | None = None, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("DJANGO_DEBUG", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"):
            env.pop(key, None)
        env.update(
            DJANGO_SETTINGS_MODULE="orchestrator.settings",
            DATABASE_URL=self.db_url,
            REDIS_URL=self.cache_url,
            CELERY_BROKER_URL=broker_url or self.broker_url,
            CACHE_KEY_PREFIX=f"bench-{self.cfg.run_id}",
            STORE_BASE_DOMAIN="bench.test",
            STORE_NAMESPACE_PREFIX="bench",
            STORE_CHARTS_DIR=str(self.charts_dir),
            RATELIMIT_WRITE=UNLIMITED,
            RATELIMIT_READ=UNLIMITED,
            RATELIMIT_CREATE=UNLIMITED,
            RATELIMIT_LOGIN=UNLIMITED,
            STORES_PER_USER="1000000",
            HELM_BIN=self.helm,
            KUBECONFIG=self.kubeconfig,
            LOG_FORMAT="text",
            PYTHONUNBUFFERED="1",
            PATH=f"{Path(self.helm).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        env.update(extra)
        return env

    def setup_django(self) -> None:
        """Configure this process's Django like the web process, but on the sink broker."""
        os.environ.update(self.process_env(broker_url=self.sink_broker_url))
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        import django

        django.setup()

    # --- database and redis ---------------------------------------------------------
    def lock(self) -> None:
        """One run per database: a second run would drop the first one's database under it."""
        import fcntl
        import tempfile

        path = Path(tempfile.gettempdir()) / f"store-orchestrator-bench-{self.cfg.db_name}.lock"
        self._lock_file = open(path, "w")  # noqa: SIM115 (held for the life of the run)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"bench: another benchmark run uses database {self.cfg.db_name}; wait for it, or give this one "
                "--db-name and --redis-db-base of its own"
            ) from None

    def create_database(self) -> None:
        import psycopg

        self.lock()

        with psycopg.connect(self.admin_db_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.cfg.db_name}" WITH (FORCE)')  # noqa: S608
            conn.execute(f'CREATE DATABASE "{self.cfg.db_name}"')
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=REPO,
            env=self.process_env(),
            check=True,
        )

    def flush_redis(self) -> None:
        import redis

        for url in (self.cache_url, self.broker_url, self.sink_broker_url):
            redis.Redis.from_url(url).flushdb()

    # --- processes ------------------------------------------------------------------
    def start_web(self, name: str = "web", broker_url: str | None = None) -> str:
        port = free_port()
        argv = [
            str(REPO / ".venv" / "bin" / "gunicorn"),
            "orchestrator.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(self.cfg.web_workers),
            "--threads",
            str(self.cfg.web_threads),
            "--access-logfile",
            "-",
        ]
        proc = Proc(name, argv, self.process_env(broker_url=broker_url), self.log_dir / f"{name}.log", REPO).start()
        self.procs.append(proc)
        self.memory.track(proc, group=name)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if not proc.alive():
                raise RuntimeError(f"gunicorn exited; see {proc.log_path}")
            import requests

            try:
                return requests.get(f"{url}/healthz/ready", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout=60, what=f"{name} at {url}")
        return url

    def start_workers(self, profile_dir: Path | None = None) -> list[Proc]:
        started = []
        app = "orchestrator"
        extra: dict[str, str] = {}
        if profile_dir is not None:
            app = "tools.bench.benchlib.profiled_app"
            extra = {"BENCH_PROFILE_DIR": str(profile_dir), "PYTHONPATH": str(REPO)}
        for i in range(self.cfg.worker_processes):
            heartbeat = self.run_dir / f"worker-{i}.heartbeat"
            argv = [
                str(REPO / ".venv" / "bin" / "celery"),
                "-A",
                app,
                "worker",
                "--loglevel=INFO",
                f"--concurrency={self.cfg.concurrency}",
                "-n",
                f"bench{i}-{self.cfg.run_id}@%h",
            ]
            env = self.process_env(WORKER_HEARTBEAT_FILE=str(heartbeat), **extra)
            proc = Proc(f"worker-{i}", argv, env, self.log_dir / f"worker-{i}.log", REPO).start()
            self.procs.append(proc)
            self.memory.track(proc, group="worker")
            started.append((proc, heartbeat))
        for proc, heartbeat in started:

            def fresh(proc=proc, heartbeat=heartbeat) -> bool:
                if not proc.alive():
                    raise RuntimeError(f"celery worker exited; see {proc.log_path}")
                return heartbeat.exists() and heartbeat.stat().st_mtime > time.time() - 10

            wait_until(fresh, timeout=90, what=f"{proc.name} heartbeat")
        return [proc for proc, _ in started]

    def start_beat(self) -> Proc:
        argv = [
            str(REPO / ".venv" / "bin" / "celery"),
            "-A",
            "orchestrator",
            "beat",
            "--loglevel=INFO",
            "--schedule",
            str(self.run_dir / "celerybeat-schedule"),
        ]
        proc = Proc("beat", argv, self.process_env(), self.log_dir / "beat.log", REPO).start()
        self.procs.append(proc)
        return proc

    def stop(self, names: set[str] | None = None) -> None:
        for proc in list(self.procs):
            if names is None or proc.name in names or any(proc.name.startswith(n + "-") for n in names):
                proc.stop()
                self.procs.remove(proc)

    # --- users ----------------------------------------------------------------------
    def make_users(self, prefix: str, count: int, web_url: str, staff: bool = False) -> list[tuple[object, str]]:
        """Create `count` users and fetch an API token for each through POST /api/auth/token/ (Basic auth)."""
        import requests
        from django.contrib.auth import get_user_model

        users = []
        for i in range(count):
            username = f"{prefix}{i}"
            password = f"bench-{self.cfg.run_id}-{i}-password"
            user = get_user_model().objects.create_user(username=username, password=password, is_staff=staff)
            response = requests.post(f"{web_url}/api/auth/token/", auth=(username, password), timeout=30)
            response.raise_for_status()
            users.append((user, response.json()["token"]))
        return users
