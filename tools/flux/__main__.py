"""Try the Flux peer alone: N stores created as HelmReleases, waited for, deleted, on the cluster
KUBECONFIG names (the simulated one: `eval "$(tools/simcluster/start.sh)"`), from the repository root:

    .venv/bin/python -m tools.flux [--n 20] [--parallelism 0] [--concurrent 10]
    .venv/bin/python -m tools.flux --cleanup      # what an interrupted run left in the cluster

Prints the wall clock, per-store p50/p95/max, stores per minute and failures of provisioning and
teardown, and the controllers' CPU seconds and peak RSS; writes results/flux-<time>-n<N>.json (per-store
records included). Exits 1 when a store failed or did not finish. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from .peer import FluxPeer, log, remove_leftovers, store_records

REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.flux", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=20, help="stores to provision and tear down (default 20)")
    p.add_argument("--parallelism", type=int, default=0, help="stores requested at once (default 0: all N)")
    p.add_argument(
        "--concurrent", type=int, default=10, help="helm-controller --concurrent (default 10, as Flux's benchmark)"
    )
    p.add_argument("--source-concurrent", type=int, default=10, help="source-controller --concurrent (default 10)")
    p.add_argument("--engines", default="woocommerce", help="comma list, used in turn (default woocommerce)")
    p.add_argument(
        "--timeout", type=float, default=0, help="seconds a store may take (default: helm's + the test's + 60)"
    )
    p.add_argument("--out", default=str(REPO / "results"), help="results directory (default results/)")
    p.add_argument("--cleanup", action="store_true", help="only remove what interrupted runs left in the cluster")
    args = p.parse_args(argv)
    if args.n < 1 or args.parallelism < 0 or args.concurrent < 1 or args.source_concurrent < 1:
        p.error("--n, --concurrent and --source-concurrent must be at least 1, --parallelism at least 0")
    return args


def configure() -> tuple[str, str]:
    """The cluster and helm to use, and Django configured as the benchmark configures it."""
    kubeconfig = os.environ.get("KUBECONFIG", "")
    helm = os.environ.get("HELM_BIN") or shutil.which("helm") or ""
    if not kubeconfig or not Path(kubeconfig).is_file():
        raise SystemExit(
            'flux: KUBECONFIG must name the cluster; start the simulated one: eval "$(tools/simcluster/start.sh)"'
        )
    if not helm:
        raise SystemExit("flux: no helm: set HELM_BIN or put helm on PATH (tools/simcluster/start.sh prints the PATH)")
    # The benchmark's store settings (tools/bench/benchlib/env.py), so the values match its stores'.
    os.environ.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", HELM_BIN=helm)
    os.environ.setdefault("STORE_BASE_DOMAIN", "bench.test")
    os.environ.setdefault("STORE_NAMESPACE_PREFIX", "bench")
    import django

    django.setup()
    return kubeconfig, helm


def _fmt(value, unit: str = "s") -> str:
    return "–" if value is None else f"{value:.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def report(title: str, figures: dict, done_key: str) -> list[str]:
    per = figures["per_store_seconds"]
    lines = [
        f"{title}:",
        f"  all done (wall clock)   {_fmt(figures['total_seconds'])}",
        f"  per store p50/p95/max   {_fmt(per['p50'])} / {_fmt(per['p95'])} / {_fmt(per['max'])}",
        f"  stores per minute       {_fmt(figures['stores_per_minute'], '')}",
        f"  {done_key} / failed / unfinished  "
        f"{figures[done_key]} / {figures['failed']} / {figures.get('unfinished', 0)} of {figures['stores']}",
    ]
    for name, use in figures["controllers"].items():
        lines.append(f"  {name:<22}  {use['cpu_seconds']:.1f} CPU s")
    for label, s in figures.get("phases_seconds", {}).items():
        lines.append(f"  phase {label}: p50 {s['p50']} s, max {s['max']} s")
    lines += [f"  error: {e}" for e in figures["errors"][:5]]
    return lines


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # A terminated run cleans up like an interrupted one: stores, controllers, temp dirs.
    signal.signal(signal.SIGTERM, _interrupt)
    kubeconfig, helm = configure()
    if args.cleanup:
        remove_leftovers(kubeconfig, helm)
        return 0
    stem = f"flux-{dt.datetime.now():%Y%m%d-%H%M%S}-n{args.n}"
    out = Path(args.out)
    log_dir = out / stem / "logs"
    peer = FluxPeer(
        kubeconfig, helm, concurrent=args.concurrent, source_concurrent=args.source_concurrent, log_dir=log_dir
    )
    parallelism = args.parallelism or args.n
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    up = down = None
    try:
        peer.start()
        log(f"run {peer.run_id}: {args.n} stores, {parallelism} at once, --concurrent={args.concurrent}")
        up = peer.provision(args.n, parallelism, engines, args.timeout or None)
        log(f"{up['ready']}/{args.n} ready in {up['total_seconds']} s; deleting")
        down = peer.teardown(parallelism)
    except KeyboardInterrupt:
        log("interrupted; removing what the run made")
        return 130
    finally:
        peer.stop()
    usage = peer.usage()
    lines = report("Provisioning (request → ready)", up, "ready") + report("Teardown (request → gone)", down, "deleted")
    lines.append("Controllers over the whole run (CPU seconds, peak RSS):")
    lines += [f"  {name:<22}  {u['cpu_seconds']:.1f} CPU s, {u['peak_rss_mib']:.0f} MiB" for name, u in usage.items()]
    print("\n".join(lines))
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "run_id": peer.run_id,
        "n": args.n,
        "parallelism": parallelism,
        "concurrent": args.concurrent,
        "source_concurrent": args.source_concurrent,
        "provisioning": up,
        "teardown": down,
        "controllers": usage,
        "stores": store_records(peer.stores),
    }
    path = out / f"{stem}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"Results: {path}  (controllers' logs: {log_dir})")
    failed = up["ready"] < args.n or down["deleted"] < len(peer.stores)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
