"""The benchmark's table: printed, and written as JSON and Markdown under results/."""

from __future__ import annotations

import json
from pathlib import Path

from .stats import ratio


def _fmt(value, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _side(section: dict, key: str) -> dict:
    return section.get(key) or {}


def comparison_rows(result: dict, section: str, done_key: str) -> list[tuple]:
    """Rows (figure, orchestrator, raw helm, ratio[, Flux, ratio]) for provisioning, upgrade or teardown;
    the Flux columns when the run measured Flux."""
    data = result.get(section) or {}
    orch, base, flux = _side(data, "orchestrator"), _side(data, "baseline"), _side(data, "flux")
    with_flux = bool(flux)
    rows = []

    def add(label, getter, unit="s", lower_is_better=True):
        a, b, f = getter(orch), getter(base), getter(flux)
        row = [label, _fmt(a, unit), _fmt(b, unit), _fmt(ratio(a, b) if lower_is_better else ratio(b, a), "×", 2)]
        if with_flux:
            row += [_fmt(f, unit), _fmt(ratio(a, f) if lower_is_better else ratio(f, a), "×", 2)]
        rows.append(tuple(row))

    add("all done (wall clock)", lambda d: d.get("total_seconds"))
    for pct in ("p50", "p95", "max"):
        add(f"per store {pct}", lambda d, pct=pct: (d.get("per_store_seconds") or {}).get(pct))
    add("stores per minute", lambda d: d.get("stores_per_minute"), unit="", lower_is_better=False)

    def cpu(d):
        c = d.get("cpu_seconds_per_store")
        return f"{c['python']:.2f} + {c['helm']:.2f}" if c else "–"

    def counts(d):
        return f"{d.get(done_key, '–')} / {d.get('failed', '–')} / {d.get('unfinished', 0)}"

    extra = lambda *cells: cells if with_flux else ()  # noqa: E731
    rows.append(("CPU s per store: Python + helm", cpu(orch), cpu(base), "", *extra(cpu(flux), "")))
    rows.append((f"{done_key} / failed / unfinished", counts(orch), counts(base), "", *extra(counts(flux), "")))
    return rows


def _table(headers: list[str], rows: list[tuple]) -> list[str]:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)] if rows else []
    lines = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return lines


def _md_table(headers: list[str], rows: list[tuple]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return lines


def sections(result: dict) -> list[tuple[str, list[str], list[tuple]]]:
    """(title, headers, rows) of every part of the report that has data."""
    out = []

    def head(section: str) -> list[str]:
        columns = ["", "orchestrator", "raw helm", "ratio (orch/helm)"]
        if (result.get(section) or {}).get("flux"):
            columns += ["Flux helm-controller", "ratio (orch/Flux)"]
        return columns

    if result.get("provisioning"):
        out.append(
            (
                "Provisioning (request → ready, seconds)",
                head("provisioning"),
                comparison_rows(result, "provisioning", "ready"),
            )
        )
    if result.get("upgrade"):
        title = "Upgrade to a new chart version (rollout vs helm upgrade --wait + helm test, seconds)"
        out.append((title, head("upgrade"), comparison_rows(result, "upgrade", "upgraded")))
    if result.get("teardown"):
        out.append(
            ("Teardown (request → gone, seconds)", head("teardown"), comparison_rows(result, "teardown", "deleted"))
        )
    inflight = result.get("inflight")
    if inflight:
        rows = [
            (
                "worker processes × concurrency (slots)",
                f"{inflight['worker_processes']} × {inflight['concurrency']} = {inflight['worker_slots']}",
            ),
            ("max stores `provisioning` at once (sampled every 0.25 s)", inflight["max_provisioning_sampled"]),
            ("max stores `provisioning` at once (from timestamps)", inflight["max_provisioning_from_timestamps"]),
            ("exceeds worker slots", "yes" if inflight["exceeds_worker_slots"] else "no"),
        ]
        out.append(("In-flight capacity", ["", "value"], rows))
    api = result.get("api")
    if api and api.get("latency"):
        lat, q = api["latency"], api.get("queries") or {}
        n = api["stores"]
        rows = [
            (
                f"POST /api/stores/ (accept + enqueue), {n} stores",
                _fmt(lat["create"]["p50"], " ms"),
                _fmt(lat["create"]["p99"], " ms"),
                "50 ms",
            ),
            (
                f"GET /api/stores/ (page of {lat['list']['page_size']}), {n} stores",
                _fmt(lat["list"]["p50"], " ms"),
                _fmt(lat["list"]["p99"], " ms"),
                "100 ms",
            ),
            (
                f"GET /api/stores/?limit=1000, {n} stores",
                _fmt(lat["list_limit_1000"]["p50"], " ms"),
                _fmt(lat["list_limit_1000"]["p99"], " ms"),
                "",
            ),
        ]
        if q:
            rows.append(
                (
                    f"SQL queries per GET, {q['small']['stores']} vs {q['large']['stores']} stores",
                    f"{q['small']['list_queries']} vs {q['large']['list_queries']}",
                    "",
                    "must not grow",
                )
            )
            rows.append(
                (
                    f"SQL queries per POST, {q['small']['stores']} vs {q['large']['stores']} stores",
                    f"{q['small']['create_queries']} vs {q['large']['create_queries']}",
                    "",
                    "must not grow",
                )
            )
        out.append(("API", ["", "p50", "p99", "target (p99)"], rows))
    out += fleet_sections(result)
    footprint = result.get("footprint")
    if footprint:
        rows = []
        for name, data in footprint.items():
            rows.append(
                (
                    name,
                    data["processes"],
                    _fmt(data["peak_total_rss_mib"], " MiB"),
                    _fmt(data["max_process_peak_rss_mib"], " MiB"),
                    data.get("peak_helm_children", 0),
                )
            )
        out.append(
            (
                "Footprint (peak RSS)",
                [
                    "process tree",
                    "processes",
                    "peak total (sampled)",
                    "largest process (VmHWM)",
                    "peak helm/sh children",
                ],
                rows,
            )
        )
    return out


SIDES = (("orchestrator", "orchestrator"), ("baseline", "raw helm"), ("flux", "Flux helm-controller"))
PHASES = ("provisioning", "teardown")


def _sides(result: dict) -> list[tuple[str, str]]:
    return [(key, label) for key, label in SIDES if (result.get("provisioning") or {}).get(key)]


def fleet_sections(result: dict) -> list[tuple[str, list[str], list[tuple]]]:
    """Throughput over time, the control plane's cost per column, and the live-store checkpoints."""
    out = []
    sides = _sides(result)
    rows = []
    for section in PHASES:
        for key, label in sides:
            minutes = ((result.get(section) or {}).get(key) or {}).get("per_minute")
            if minutes:
                rows.append((f"{section}, {label}", " ".join(str(c) for c in minutes)))
    if rows:
        out.append(("Stores done in each minute (does throughput sag as the cluster fills?)", ["", "per minute"], rows))
    rows = []
    for section in PHASES:
        for key, label in sides:
            cp = ((result.get(section) or {}).get(key) or {}).get("control_plane") or {}
            comps = cp.get("components") or {}
            if not cp:
                continue

            def comp(name, comps=comps):
                c = comps.get(name)
                return f"{c['cpu_seconds']:.0f} s / {c['peak_rss_mib']} MiB" if c else "–"

            rows.append(
                (
                    f"{section}, {label}",
                    comp("kube-apiserver"),
                    comp("etcd"),
                    comp("kube-controller-manager"),
                    comp("kwok"),
                    _fmt(cp.get("etcd_size_mib"), " MiB"),
                )
            )
    if rows:
        headers = ["", "API server CPU / peak RSS", "etcd", "controller-manager", "kwok (simulated nodes)"]
        headers.append("etcd size after")
        out.append(("Control plane while each column ran", headers, rows))
    live = result.get("live") or {}
    if live:
        points = [live[k] for k in ("checkpoint", "all") if k in live]
        headers = [""] + [f"{p['ready_stores']} ready ({p['live_stores']} live)" for p in points]

        def row(label, get):
            return (label, *(get(p) for p in points))

        def pct(key):
            return lambda p: f"{_fmt(p[key]['p50'], ' ms')} / {_fmt(p[key]['p95'], ' ms')}"

        rows = [
            row("reconciler pass (median of 3)", lambda p: _fmt(p["reconcile_pass_ms"]["median"], " ms")),
            row("GET /api/stores/ (staff, first page) p50 / p95", pct("api_list_ms")),
            row("GET /api/stores/{id}/ p50 / p95", pct("api_detail_ms")),
            row("dashboard store list (staff) p50 / p95", pct("dashboard_list_ms")),
        ]
        out.append(("With the stores live (orchestrator)", headers, rows))
    return out


def header_lines(result: dict) -> list[str]:
    meta = result["meta"]
    return [
        f"Store Orchestrator benchmark, {meta['started']} — N={meta['n']} ({', '.join(meta['engines'])}), "
        f"{meta['users']} API users, parallelism {meta['parallelism']}",
        f"web: gunicorn {meta['web_workers']} workers × {meta['web_threads']} threads; worker: "
        f"{meta['worker_processes']} celery process(es) × concurrency {meta['concurrency']}; "
        f"machine: {meta['machine']}",
    ]


def render_text(result: dict) -> str:
    lines = header_lines(result)
    for title, headers, rows in sections(result):
        lines += ["", title]
        lines += ["  " + line for line in _table(headers, rows)]
    phase_lines = _phase_text(result)
    if phase_lines:
        lines += ["", "Where a store's time goes (p50 / max seconds)"] + phase_lines
    return "\n".join(lines)


def _phase_text(result: dict) -> list[str]:
    prov = result.get("provisioning") or {}
    lines = []
    for side in ("orchestrator", "baseline", "flux"):
        phases = (prov.get(side) or {}).get("phases_seconds") or {}
        if phases:
            lines.append(f"  {side}:")
            for label, s in phases.items():
                lines.append(f"    {label:<52} {_fmt(s['p50'], '', 2):>7} / {_fmt(s['max'], '', 2):>7}")
    return lines


def render_markdown(result: dict) -> str:
    lines = ["# Benchmark result", ""] + [line + "  " for line in header_lines(result)]
    for title, headers, rows in sections(result):
        lines += ["", f"## {title}", ""]
        lines += _md_table(headers, rows)
    phase_lines = _phase_text(result)
    if phase_lines:
        lines += ["", "## Where a store's time goes (p50 / max seconds)", "", "```"] + phase_lines + ["```"]
    return "\n".join(lines) + "\n"


def write(result: dict, out_dir: Path, stem: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")
    paths["markdown"].write_text(render_markdown(result))
    plot = throughput_plot(result, out_dir / f"{stem}.png")
    if plot is not None:
        paths["plot"] = plot
    for kind, path in list(paths.items()):
        latest = out_dir / f"bench-latest{path.suffix}"
        latest.write_bytes(path.read_bytes())
        paths[f"{kind}_latest"] = latest
    return paths


def render_profiles(profile_dir: Path) -> dict:
    """Merge the per-process pyinstrument sessions per task; write text and HTML next to them."""
    from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
    from pyinstrument.session import Session

    merged: dict[str, Session] = {}
    counts: dict[str, list[float]] = {}
    for path in sorted(profile_dir.glob("*.pyisession")):
        task = path.name.split(".", 1)[0]
        session = Session.load(str(path))
        merged[task] = session if task not in merged else Session.combine(merged[task], session)
        count_file = path.with_suffix(".count")
        if count_file.exists():
            n, busy = count_file.read_text().split()
            have = counts.setdefault(task, [0, 0.0])
            have[0] += int(n)
            have[1] += float(busy)
    out = {}
    for task, session in merged.items():
        text = ConsoleRenderer(unicode=True, color=False, short_mode=True, show_all=False, time="seconds").render(
            session
        )
        (profile_dir / f"{task}.txt").write_text(text)
        (profile_dir / f"{task}.html").write_text(HTMLRenderer().render(session))
        n, busy = counts.get(task, [0, session.duration])
        out[task] = {"runs": n, "busy_seconds": round(busy, 3), "text": str(profile_dir / f"{task}.txt")}
    return out


def throughput_plot(result: dict, path: Path) -> Path | None:
    """Stores ready (and gone) over time, one line per column, and the stores finished per minute: a PNG."""
    sides = _sides(result)
    if not any(((result.get("provisioning") or {}).get(key) or {}).get("done_seconds") for key, _ in sides):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meta = result["meta"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for row, section in enumerate(PHASES):
        done_word = "ready" if section == "provisioning" else "gone"
        cumulative, rate = axes[row]
        for key, label in sides:
            figures = (result.get(section) or {}).get(key) or {}
            seconds = figures.get("done_seconds") or []
            if not seconds:
                continue
            cumulative.step([0, *seconds], range(len(seconds) + 1), where="post", label=label)
            minutes = figures.get("per_minute") or []
            rate.plot([i + 0.5 for i in range(len(minutes))], minutes, marker="o", label=label)
        cumulative.set(
            title=f"{section}: stores {done_word} over time", xlabel="seconds from the first request", ylabel="stores"
        )
        rate.set(title=f"{section}: stores {done_word} per minute", xlabel="minute", ylabel="stores per minute")
        rate.set_ylim(bottom=0)
        for axis in (cumulative, rate):
            axis.grid(alpha=0.3)
            axis.legend()
    fig.suptitle(
        f"{meta['n']} {', '.join(meta['engines'])} stores, {meta['parallelism']} at once — {meta['started'][:10]}"
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
