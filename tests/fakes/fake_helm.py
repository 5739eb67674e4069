"""Scripted helm: the only fake in the test suite, at the helm boundary.

FAKE_HELM_SCRIPT names a JSON file: a list of rules, each
  {"command": "upgrade", "times": 2, "exit": 1, "stderr": "...", "stdout": "...",
   "sleep": 0, "kill": false, "then_real": false}
The first rule whose command matches argv[1] and still has times left is used once:
it may sleep, print, exit with a code, kill itself with SIGKILL (a crash mid-install),
or, with then_real, pass the call on to the real helm afterwards. Calls that match no
rule go to REAL_HELM. Every call is appended to FAKE_HELM_SCRIPT + ".calls".
"""

import fcntl
import json
import os
import signal
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


def main() -> None:
    args = sys.argv[1:]
    command = args[0] if args else ""
    script = os.environ.get("FAKE_HELM_SCRIPT")
    rule = take_rule(script, command) if script and os.path.exists(script) else None
    if script:
        with open(script + ".calls", "a") as log:
            log.write(json.dumps({"args": args[:3], "scripted": rule is not None}) + "\n")
    if rule is not None:
        time.sleep(rule.get("sleep", 0))
        if rule.get("kill"):
            os.kill(os.getpid(), signal.SIGKILL)
        if not rule.get("then_real"):
            sys.stdout.write(rule.get("stdout", ""))
            sys.stderr.write(rule.get("stderr", ""))
            sys.exit(rule.get("exit", 0))
    real = os.environ["REAL_HELM"]
    os.execv(real, [real, *args])


if __name__ == "__main__":
    main()
