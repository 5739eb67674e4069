"""Scripted helm: the only fake in the test suite, at the helm boundary.

FAKE_HELM_SCRIPT names a JSON file: a list of rules, each
  {"command": "upgrade", "times": 2, "exit": 1, "stderr": "...", "stdout": "...",
   "sleep": 0, "kill": false, "then_real": false,
   "kill_when_pending": {"after": 0.5, "target": "helm" | "group"}}
The first rule whose command matches argv[1] and still has times left is used once:
it may sleep, print, exit with a code, kill itself with SIGKILL, or, with then_real, pass
the call on to the real helm afterwards.

kill_when_pending is the real crash: the real helm runs as a child (with --wait, so the
release stays pending while its workloads come up), and once helm's own release record says
pending-install/-upgrade/-rollback, `after` seconds later, it is SIGKILLed together with this
wrapper ("helm"), or the whole process group, i.e. the worker that ran it ("group"). The
state helm's record had when the kill landed is logged ("killed_at", with the time "at"): for "group"
it may be "deployed" (the worker dies just after its helm finished); "helm" logs "missed" then.

Calls that match no rule go to REAL_HELM. Every call is appended to FAKE_HELM_SCRIPT + ".calls".
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time


def take_rule(script_path: str, command: str):
    with open(script_path, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        rules = json.load(fh)
        chosen = None
        for rule in rules:
            if rule["command"] == command and rule.get("times", 1) > 0:
                rule["times"] = rule.get("times", 1) - 1
                chosen = rule
                break
        fh.seek(0)
        fh.truncate()
        json.dump(rules, fh)
    return chosen


def _flag(args: list[str], name: str) -> list[str]:
    return [name, args[args.index(name) + 1]] if name in args else []


def _release_state(real: str, args: list[str]) -> str:
    status = subprocess.run(
        [real, "status", args[1], *_flag(args, "--namespace"), *_flag(args, "--kubeconfig"), "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(status.stdout)["info"]["status"] if status.returncode == 0 else "absent"


def run_real_and_kill(real: str, args: list[str], spec: dict, log_path: str | None) -> None:
    child = subprocess.Popen([real, *args, *([] if "--wait" in args else ["--wait"])])
    state = "absent"
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        state = _release_state(real, args)
        if state.startswith("pending-"):
            break
        time.sleep(0.1)
    if child.poll() is not None:
        _log(log_path, {"args": args[:3], "killed_at": "missed"})
        sys.exit(child.returncode)
    time.sleep(spec.get("after", 0))
    target = spec.get("target", "helm")
    if child.poll() is not None and target == "helm":
        _log(log_path, {"args": args[:3], "killed_at": "missed"})  # helm finished first: nothing to kill
        sys.exit(child.returncode)
    # The state the kill really lands in: helm may have finished meanwhile ("deployed"), and a worker
    # killed just after its helm finished is a case of its own.
    state = _release_state(real, args) if child.poll() is not None else state
    _log(log_path, {"args": args[:3], "killed_at": state, "target": target, "at": time.time()})
    if target == "group":
        os.killpg(os.getpgid(0), signal.SIGKILL)
    child.kill()
    child.wait()
    os.kill(os.getpid(), signal.SIGKILL)


def _log(path: str | None, entry: dict) -> None:
    if path:
        with open(path, "a") as log:
            log.write(json.dumps(entry) + "\n")


def main() -> None:
    args = sys.argv[1:]
    command = args[0] if args else ""
    script = os.environ.get("FAKE_HELM_SCRIPT")
    rule = take_rule(script, command) if script and os.path.exists(script) else None
    log_path = script + ".calls" if script else None
    _log(log_path, {"args": args, "scripted": rule is not None})
    real = os.environ["REAL_HELM"]
    if rule is not None:
        if rule.get("kill_when_pending"):
            run_real_and_kill(real, args, rule["kill_when_pending"], log_path)
        time.sleep(rule.get("sleep", 0))
        if rule.get("kill"):
            os.kill(os.getpid(), signal.SIGKILL)
        if not rule.get("then_real"):
            sys.stdout.write(rule.get("stdout", ""))
            sys.stderr.write(rule.get("stderr", ""))
            sys.exit(rule.get("exit", 0))
    os.execv(real, [real, *args])


if __name__ == "__main__":
    main()
