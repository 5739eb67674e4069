"""The orchestrator's processes under test (gunicorn, celery worker, beat) and their memory.

Each process is started in its own session, so its whole tree (gunicorn workers, celery pool
children, the helm subprocesses they spawn) is found by session id in /proc and stopped as one
process group. Peak memory is read from /proc/<pid>/status (VmHWM, VmRSS): psutil is not needed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Short-lived tools a Python process runs (pyhelm3 starts helm through /bin/sh).
TOOL_NAMES = {"helm", "sh", "dash", "bash", "kubectl"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proc:
    """One background process (and its descendants), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self.popen: subprocess.Popen | None = None

    def start(self) -> Proc:
        log = open(self.log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        self.popen = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the process group (a warm shutdown for celery), SIGKILL what is left."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # stragglers of the group (helm children)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _read_status(pid: int) -> dict[str, str] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def _kib(value: str | None) -> int:
    return int(value.split()[0]) if value else 0


_TICK = os.sysconf("SC_CLK_TCK")


def session_members(sid: int) -> dict[int, tuple[float, float]]:
    """Pids whose session id is `sid` (field 6 of /proc/<pid>/stat), with CPU seconds: (own, reaped children)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # comm may contain spaces and parentheses: split after the last ')'.
        rest = stat.rsplit(")", 1)[-1].split()
        if len(rest) > 14 and int(rest[3]) == sid:
            own = (int(rest[11]) + int(rest[12])) / _TICK  # utime + stime
            children = (int(rest[13]) + int(rest[14])) / _TICK  # cutime + cstime: helm (through sh) it waited for
            out[int(entry)] = (own, children)
    return out


@dataclass
class TreeMemory:
    """What the sampler learnt about one process tree."""

    name: str
    hwm_kib: dict[int, int] = field(default_factory=dict)  # pid -> VmHWM (peak RSS) of Python processes
    names: dict[int, str] = field(default_factory=dict)
    peak_total_rss_kib: int = 0  # largest sum of VmRSS of the tree's Python processes at one sample
    peak_tools: int = 0  # most helm/sh children alive at one sample
    peak_tools_rss_kib: int = 0  # their largest summed VmRSS at one sample
    cpu: dict[int, tuple[float, float]] = field(default_factory=dict)  # Python pid -> (own, children) CPU s

    def report(self) -> dict:
        mib = 1024.0
        return {
            "processes": len(self.hwm_kib),
            "peak_total_rss_mib": round(self.peak_total_rss_kib / mib, 1),
            "max_process_peak_rss_mib": round(max(self.hwm_kib.values(), default=0) / mib, 1),
            "sum_of_process_peaks_mib": round(sum(self.hwm_kib.values()) / mib, 1),
            "peak_helm_children": self.peak_tools,
            "peak_helm_children_rss_mib": round(self.peak_tools_rss_kib / mib, 1),
        }


class MemorySampler(threading.Thread):
    """Samples the session trees of the given processes every `interval` seconds."""

    def __init__(self, interval: float = 1.0):
        super().__init__(name="memory-sampler", daemon=True)
        self.interval = interval
        self.trees: dict[str, tuple[Proc, TreeMemory]] = {}
        self._lock = threading.Lock()
        self._stop_event = threading.Event()

    def track(self, proc: Proc, group: str | None = None) -> None:
        """Track `proc`; processes with the same `group` (e.g. several workers) are summed together."""
        key = group or proc.name
        with self._lock:
            self.trees[f"{key}#{proc.pid}"] = (proc, TreeMemory(key))

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> None:
        with self._lock:
            items = list(self.trees.values())
        for proc, mem in items:
            if proc.popen is None:
                continue
            total = tools = tools_rss = 0
            for pid, cpu in session_members(proc.pid).items():
                status = _read_status(pid)
                if status is None:
                    continue
                name = status.get("Name", "?")
                rss = _kib(status.get("VmRSS"))
                if name in TOOL_NAMES:
                    tools += 1
                    tools_rss += rss
                    continue
                mem.names[pid] = name
                mem.cpu[pid] = cpu
                mem.hwm_kib[pid] = max(mem.hwm_kib.get(pid, 0), _kib(status.get("VmHWM")))
                total += rss
            mem.peak_total_rss_kib = max(mem.peak_total_rss_kib, total)
            mem.peak_tools = max(mem.peak_tools, tools)
            mem.peak_tools_rss_kib = max(mem.peak_tools_rss_kib, tools_rss)

    def cpu_seconds(self, group: str) -> dict[str, float]:
        """CPU used so far by the group's Python processes, and by the helm processes they ran and reaped."""
        self.sample()
        own = children = 0.0
        with self._lock:
            items = list(self.trees.values())
        for _, mem in items:
            if mem.name == group:
                own += sum(c[0] for c in mem.cpu.values())
                children += sum(c[1] for c in mem.cpu.values())
        return {"python": own, "helm": children}

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)
        self.sample()

    def report(self) -> dict:
        """Per group: trees of the same group are combined (sums of totals, max of single processes)."""
        groups: dict[str, dict] = {}
        with self._lock:
            items = list(self.trees.values())
        for _, mem in items:
            part = mem.report()
            have = groups.get(mem.name)
            if have is None:
                groups[mem.name] = part
                continue
            for key in (
                "processes",
                "peak_total_rss_mib",
                "sum_of_process_peaks_mib",
                "peak_helm_children",
                "peak_helm_children_rss_mib",
            ):
                have[key] = round(have[key] + part[key], 1)
            have["max_process_peak_rss_mib"] = max(have["max_process_peak_rss_mib"], part["max_process_peak_rss_mib"])
        return groups


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
