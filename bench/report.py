"""The bench report: report.json (every figure), report.md (the story, ratios first) and
latency.png (latency against rate, beside raw Kafka at the same rates)."""
from __future__ import annotations

import math
from pathlib import Path

import orjson


def _clean(value):
    """JSON has no infinity: a latency never reached (a message not delivered within the
    drain window) is written as null; the row's not_delivered count says how many."""
    if isinstance(value, float):
        return None if math.isinf(value) or math.isnan(value) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _machine_ms(cpu: dict) -> str:
    """CPU per message over the whole machine: every process, the load generator included."""
    return f"{sum(v for k, v in cpu.items() if k != 'wall'):.1f}"


def _statements(row: dict) -> str:
    per = row.get("statements_per_delivered") or {}
    if not per:
        return "–"
    return f"{per.get('conversation', 0):.1f} / {sum(per.values()):.1f}"


def _ms(seconds) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    if isinstance(seconds, float) and math.isinf(seconds):
        return "not delivered"
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def _x(ratio) -> str:
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return "–"
    if isinstance(ratio, float) and math.isinf(ratio):
        return "∞"
    return f"{ratio:.2f}×"


def _ratio(a, b):
    if a is None or b is None or b == 0 or (isinstance(b, float) and math.isinf(b)):
        return None
    return a / b


def verdicts(results: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, goal, met) rows; only ratios to floors of the same run decide."""
    rows = []
    ladder = results.get("ladder")
    if ladder and "rows" in ladder:
        best = [r for r in ladder["rows"] if r["sustainable"]]
        peak = max((r["achieved_per_s"] for r in ladder["rows"]), default=0)
        rows.append(("sustainable rate (≥95 % delivered, nothing refused, p99 < 1 s)",
                     f"{ladder['sustainable_per_s']:.0f} msg/s" + ("" if ladder["sustainable_found"] else
                                                                    " (no step kept up: peak achieved)"),
                     "≥ 1,000 msg/s with p99 ≤ 100 ms", "yes" if any(
                         r["offered_per_s"] >= 1000 and r["sustainable"] and r["e2e_p99"] <= 0.1 for r in best) else "no"))
        overload = next((r for r in ladder["rows"] if r["kind"] == "overload"), None)
        # Against the best achieved at no more offered load: a step offered more that got
        # more through says the stack was not yet saturated, not that this one collapsed.
        below = max((r["achieved_per_s"] for r in ladder["rows"]
                     if overload and r["offered_per_s"] <= overload["offered_per_s"]), default=0)
        if overload and below:
            rows.append(("goodput at 2× sustainable / best achieved on the ladder at no more offered",
                         _x(overload["achieved_per_s"] / below), "near 1× (excess refused fast as busy)",
                         "yes" if overload["achieved_per_s"] >= 0.9 * below else "no"))
        most = next((r for r in ladder["rows"] if r["kind"] == "most"), None)
        if most and peak and ladder["sustainable_per_s"]:
            times = most["offered_per_s"] / ladder["sustainable_per_s"]
            rows.append((f"goodput at {times:.1f}× sustainable (the most the bench's visitors offer) / best achieved",
                         _x(most["achieved_per_s"] / peak), "≥ 0.9× at 10×",
                         "yes" if most["achieved_per_s"] >= 0.9 * peak else "no"))
        if best:
            top = max(best, key=lambda r: r["offered_per_s"])
            rows.append((f"visitor→operator p99 / raw Kafka p99 at {top['offered_per_s']:.0f} msg/s",
                         _x(_ratio(top["e2e_p99"], top["raw_kafka"]["p99"])), "(no goal; the floor)", "–"))
    cost = results.get("cost")
    if cost and "wall_ratio" in cost:
        a, b = cost["lengths"]
        rows.append((f"cost per message at length {b:,} / at {a:,} (wall; service CPU {_x(cost.get('cpu_ratio'))})",
                     _x(cost["wall_ratio"]), "≤ 1.3×", "yes" if cost["wall_ratio"] <= 1.3 else "no"))
    memory = results.get("memory")
    if memory and "ratio" in memory:
        rows.append((f"memory per idle visitor socket / bare aiohttp ({memory['gateway']['sockets']:,} sockets)",
                     _x(memory["ratio"]), "≤ 1.5×", "yes" if memory["ratio"] is not None and memory["ratio"] <= 1.5 else "no"))
    fanout = results.get("fanout")
    if fanout and "spread_p99_ratio" in fanout:
        r = fanout["spread_p99_ratio"]
        rows.append((f"fan-out spread p99 with one stalled socket / all reading ({fanout['unstalled']['sockets_measured'] + 1:,} "
                     f"sockets; end to end {_x(fanout['p99_ratio'])})",
                     _x(r), "≤ 1.2×", "yes" if r is not None and not math.isinf(r) and r <= 1.2 else "no"))
    scale = results.get("scaleout")
    if scale and "achieved_ratio" in scale:
        r = scale["achieved_ratio"]
        rows.append((f"achieved with two conversation replicas and two gateways / one of each, at {scale['rate']:.0f} msg/s",
                     _x(r), "≥ 0.95× (no throughput lost)", "yes" if r is not None and r >= 0.95 else "no"))
    found = results.get("search")
    if found and "p95" in found:
        rows.append((f"search p95 over {found['entries']:,} messages (admin and operator; "
                     f"{_x(found['p95_ratio_to_floor'])} a key read)", f"{found['p95'] * 1000:.0f} ms", "≤ 100 ms",
                     "yes" if found["p95"] <= 0.1 else "no"))
    live = results.get("live")
    if live and "p99_ratio" in live:
        r = live["p99_ratio"]
        rows.append((f"p99 at {live['rate']:.0f} msg/s with {live['visitors']:,} live visitors browsing / idle "
                     f"(CPU per message {_x(live['cpu_ratio'])})", _x(r), f"≤ {live['goal_p99_ratio']}×",
                     "yes" if r is not None and r <= live["goal_p99_ratio"] else "no"))
    rebuild = results.get("rebuild")
    if rebuild and "ratio" in rebuild:
        r = rebuild["ratio"]
        rows.append(("inbox rebuild events/s / raw aiokafka consume", f"{r:.0%}" if r is not None else "–", "≥ 30 %",
                     "yes" if r is not None and r >= 0.3 else "no"))
    backbone = results.get("backbone")
    if backbone and "floor" in backbone:
        f, p = backbone["floor"], backbone["parley"]
        rows.append(("append→relay→consume p99 / raw Kafka p99 (one at a time)", _x(_ratio(p["p99"], f["p99"])),
                     "(no goal; the floor)", "–"))
        rows.append(("append→relay→consume throughput / raw Kafka", _x(_ratio(p["throughput"], f["throughput"])),
                     "(no goal; the floor)", "–"))
    sealing = results.get("sealing")
    if sealing and "throughput_ratio" in sealing:
        rows.append(("sealed / plain append→relay→consume throughput", _x(sealing["throughput_ratio"]),
                     "(the cost of issue 20)", "–"))
    return rows


def markdown(report: dict) -> str:
    m, res = report["machine"], report["results"]
    out = [f"# Parley bench report{' (quick smoke run: tiny sizes, figures mean nothing)' if report['quick'] else ''}",
           "",
           f"`{report['command']}` on {report['started_at']} (UTC), commit `{report['commit']}`, "
           f"{report['duration_s']:.0f} s in all." + (" **Interrupted: the sections after the last one shown did not run.**"
                                                       if report.get("interrupted") else ""),
           "",
           f"Machine: {m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), {m['memory_total_mb']:,} MB memory "
           f"({m['memory_available_mb']:,} MB free at the start), load average {m['load_average_at_start']} at the "
           f"start, Python {m['python']}, Linux {m['kernel']}; {report['components']}. Kafka, PostgreSQL, the five "
           "services and the load generator all share these CPUs (and so does whatever else runs on the box): "
           "every verdict is a ratio to a floor measured in this same run.",
           "",
           "## Verdicts", "", "| figure | value | goal | met |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in verdicts(res)]
    errors = {k: v["error"] for k, v in res.items() if isinstance(v, dict) and "error" in v}
    if errors:
        out += ["", "Sections that failed (their figures are missing):", ""]
        out += [f"- **{k}**: `{v}`" for k, v in errors.items()]
    ladder = res.get("ladder")
    if ladder and "rows" in ladder:
        out += ["", "## Rate ladder", "",
                f"Visitors write through `/ws/visitor`, each from its own address behind one trusted proxy hop, each "
                f"at most {ladder['per_visitor_rate'] * 60:.0f} messages a minute (the limit is 30); one admin "
                f"operator reads `/ws/operator`. Each step sends for {ladder['step_seconds']:.0f} s, then waits up to "
                f"{ladder['drain_seconds']:.0f} s for the stragglers; *achieved* is messages on the operator's screen "
                "per second from the step's start to the last one's arrival. A message not delivered by then counts "
                "as infinitely late in the percentiles. Raw Kafka: aiokafka produce (idempotent, acks=all) → consume "
                f"at the same rate for {ladder['raw_seconds']:.0f} s, right after the step.",
                "",
                "| target msg/s | visitors | achieved | visitor→operator p50 / p99 | ack p50 / p99 | refused | "
                "not delivered | raw Kafka p50 / p99 | p99 / raw p99 | CPU ms per message: gateway / conversation / "
                "other services / Kafka / PostgreSQL / rest of the machine / load generator | CPU ms per message, "
                "whole machine | SQL statements per message: conversation / all services |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ladder["rows"]:
            c = r["cpu_ms_per_delivered"]
            others = sum(v for k, v in c.items() if k in ("operator-registry", "crm-bridge", "scheduler"))
            label = f"{r['target_per_s']:,.0f}" + {"overload": " (2× sustainable)", "most": " (the most offered)"}.get(r["kind"], "")
            refused = ", ".join(f"{k} {v}" for k, v in r["errors"].items()) or "0"
            out.append(f"| {label} | {r['visitors']:,} | {r['achieved_per_s']:,.0f} | {_ms(r['e2e_p50'])} / "
                       f"{_ms(r['e2e_p99'])} | {_ms(r['ack_p50'])} / {_ms(r['ack_p99'])} | {refused} | "
                       f"{r['not_delivered']} | {_ms(r['raw_kafka']['p50'])} / {_ms(r['raw_kafka']['p99'])} | "
                       f"{_x(_ratio(r['e2e_p99'], r['raw_kafka']['p99']))} | {c.get('gateway', 0):.1f} / "
                       f"{c.get('conversation', 0):.1f} / {others:.1f} / {c.get('kafka', 0):.1f} / "
                       f"{c.get('postgres', 0):.1f} / {c.get('everything_else', 0):.1f} / "
                       f"{c.get('loadgen', 0):.1f} | {_machine_ms(c)} | {_statements(r)} |")
        slow = [f"{r['target_per_s']:,.0f}/s: {r['backlog_settle_s']} s" + (f" ({r['unanswered_after_settle']} never answered)"
                                                                              if r['unanswered_after_settle'] else "")
                for r in ladder["rows"] if r.get("backlog_settle_s", 0) >= 1]
        if slow:
            out += ["", "Backlog left by a step, drained before the next one started: " + "; ".join(slow) + "."]
        out += ["", f"Sustainable: {ladder['sustainable_per_s']:.0f} msg/s"
                + ("" if ladder["sustainable_found"] else " (no step kept up; the peak achieved is used)") + ".",
                "", "![latency against rate](latency.png)"]
    cost = res.get("cost")
    if cost and "points" in cost:
        out += ["", "## Cost per message", "",
                ("A visitor message on the widget's socket until its ack, through in-process services"
                 if "message_cost" in cost.get("source", "") else
                 "A visitor message and its catch-up read, as the gateway does them, against the conversation service "
                 "process") + f" (source: `{cost.get('source', '?')}`).", "",
                "| conversation length (events) | wall median | wall p90 | conversation service CPU per message |",
                "|---|---|---|---|"]
        for length, p in cost["points"].items():
            out.append(f"| {int(length):,} | {_ms(p['wall_median'])} | {_ms(p['wall_p90'])} | "
                       f"{_ms(p['service_cpu_per_message'])} |")
        out += ["", f"At {cost['lengths'][1]:,} / at {cost['lengths'][0]:,}: wall {_x(cost['wall_ratio'])}, "
                f"service CPU {_x(cost.get('cpu_ratio'))} (goal ≤ 1.3×)."]
    memory = res.get("memory")
    if memory and "gateway" in memory:
        b, g = memory["bare"], memory["gateway"]
        out += ["", "## Memory per idle socket", "",
                "| server | sockets | RSS before → after | per socket |", "|---|---|---|---|",
                f"| bare aiohttp WebSocket server | {b['sockets']:,} | {b['rss_before_mb']} → {b['rss_after_mb']} MB | "
                f"{b['kb_per_socket']} KiB |",
                f"| Parley gateway, `/ws/visitor` | {g['sockets']:,} | {g['rss_before_mb']} → {g['rss_after_mb']} MB | "
                f"{g['kb_per_socket']} KiB |", "", f"Ratio {_x(memory['ratio'])} (goal ≤ 1.5×)."]
    fanout = res.get("fanout")
    if fanout and "unstalled" in fanout:
        out += ["", "## Fan-out with a stalled reader", "",
                "| run | sockets measured | pushes arrived | p50 / p99 end to end | p50 / p99 spread | stalled socket closed by the gateway |",
                "|---|---|---|---|---|---|"]
        for name in ("unstalled", "stalled", "unstalled_again"):
            if name not in fanout:
                continue
            f = fanout[name]
            label = "one socket stalled" if f["stalled"] else ("all reading, again" if name == "unstalled_again"
                                                                 else "all reading")
            out.append(f"| {label} | {f['sockets_measured']:,} | "
                       f"{f['pushes_delivered']:,} / {f['pushes_expected']:,} | {_ms(f['p50'])} / {_ms(f['p99'])} | "
                       f"{_ms(f.get('spread_p50', math.nan))} / {_ms(f.get('spread_p99', math.nan))} | "
                       f"{'–' if f['stalled_socket_closed_by_gateway'] is None else ('yes' if f['stalled_socket_closed_by_gateway'] else 'no')}"
                       f"{'' if f.get('gateway_4408_closes') is None else ' (gateway closes with 4408: %d)' % f['gateway_4408_closes']} |")
        u = fanout["unstalled"]
        out += ["", f"{u['messages']} messages at {u['rate_per_s']:.0f}/s, after {u['fill_messages']:,} large ones to a "
                f"probe socket (and the stalled one) alone; the probe saw {fanout['stalled'].get('fill_seen_by_probe', '?')} "
                f"of them in the stalled run. The spread is each push against the message's first arrival on any "
                f"socket: the fan-out alone. Its p99, stalled / mean of the runs before and after it: "
                f"{_x(fanout.get('spread_p99_ratio'))} (goal ≤ 1.2×); end to end {_x(fanout['p99_ratio'])}."]
    scale = res.get("scaleout")
    if scale and "two" in scale:
        out += ["", "## Scale-out: two conversation replicas and two gateways on this machine", "",
                "| run | visitors | achieved | visitor→operator p50 / p99 | refused | CPU ms per message, whole machine |",
                "|---|---|---|---|---|---|"]
        for name, label in (("one", "one of each"), ("two", "two of each (half the visitors on each gateway)"),
                            ("one_again", "one of each, again")):
            r = scale[name]
            out.append(f"| {label} | {r['visitors']:,} | {r['achieved_per_s']:,.0f} | {_ms(r['e2e_p50'])} / "
                       f"{_ms(r['e2e_p99'])} | {', '.join(f'{k} {v}' for k, v in r['errors'].items()) or '0'} | "
                       f"{_machine_ms(r['cpu_ms_per_delivered'])} |")
        out += ["", f"Achieved, two / mean of the one-replica runs: {_x(scale['achieved_ratio'])} (goal ≥ 0.95×)."]
    rebuild = res.get("rebuild")
    if rebuild and "raw" in rebuild:
        out += ["", "## Inbox projection rebuild", "",
                "| reader | events | seconds | events/s |", "|---|---|---|---|",
                f"| raw aiokafka consume (parse only) | {rebuild['raw']['events']:,} | {rebuild['raw']['seconds']} | "
                f"{rebuild['raw']['events_per_s']:,.0f} |",
                f"| inbox rebuild (ConsumerRunner + projection) | {rebuild['rebuild']['events']:,} | "
                f"{rebuild['rebuild']['seconds']} | {rebuild['rebuild']['events_per_s']:,.0f} |", "",
                f"`{rebuild['topic']}` held {rebuild['events_in_topic']:,} events; rebuild "
                f"{rebuild['ratio']:.0%} of raw (goal ≥ 30 %)." if rebuild.get("ratio") is not None else ""]
    live = res.get("live")
    if live and "rows" in live:
        out += ["", "## Live visitors", "",
                f"{live['visitors']:,} visitor sockets on one gateway, each telling a new page every "
                f"{live['browse_seconds']:.0f} s while browsing ({live['page_frames_sent']:,} page frames in all), "
                f"alternating with steps where they sit idle, at {live['rate']:.0f} msg/s.", "",
                "| step | p50 | p99 | delivered | CPU ms/msg, whole machine |", "|---|---|---|---|---|"]
        for kind in ("idle", "browsing"):
            for row in live["rows"][kind]:
                out.append(f"| {kind} | {_ms(row['e2e_p50'])} | {_ms(row['e2e_p99'])} | {row['delivered']}/{row['sent']} | "
                           f"{_machine_ms(row['cpu_ms_per_delivered'])} |")
        out += ["", f"Median p99 browsing / idle: {_x(live['p99_ratio'])}; CPU per message {_x(live['cpu_ratio'])}. "
                    f"`GET /api/visitors/live` ({live['listed_total']:,} live, {live['listed_shown']:,} shown) p95 "
                    f"{_ms(live['list_p95'])}, {_x(live['list_ratio'])} `GET /api/session` ({_ms(live['session_p95'])})."]
    found = res.get("search")
    if found and "admin" in found:
        out += ["", "## Search across history", "",
                f"`GET /api/search`'s query over {found['entries']:,} generated messages in {found['conversations']:,} "
                f"conversations (written and indexed in {found['fill_s']} s), {found['queries']} queries of words "
                "drawn as often as they occur, Russian word forms, two words and phones.", "",
                "| who | p50 | p95 | p99 | queries with results |", "|---|---|---|---|---|"]
        for who, label in (("admin", "admin (every conversation)"), ("operator", "operator (own and unclaimed)")):
            r = found[who]
            out.append(f"| {label} | {_ms(r['p50'])} | {_ms(r['p95'])} | {_ms(r['p99'])} | "
                       f"{r['with_results']} / {found['queries']} |")
        out += ["", f"A primary-key read of one entry, p95: {_ms(found['floor_p95'])}; search p95 "
                    f"{_x(found['p95_ratio_to_floor'])} that (goal: p95 ≤ 100 ms)."]
    backbone = res.get("backbone")
    if backbone and "floor" in backbone:
        f, p = backbone["floor"], backbone["parley"]
        out += ["", "## Backbone: append → relay → consume", "",
                "| | raw Kafka | Parley | ratio |", "|---|---|---|---|",
                f"| latency p50 (one at a time) | {_ms(f['p50'])} | {_ms(p['p50'])} | {_x(_ratio(p['p50'], f['p50']))} |",
                f"| latency p99 | {_ms(f['p99'])} | {_ms(p['p99'])} | {_x(_ratio(p['p99'], f['p99']))} |",
                f"| throughput ({backbone['writers']} writers) | {f['throughput']:,.0f}/s | {p['throughput']:,.0f}/s | "
                f"{_x(_ratio(p['throughput'], f['throughput']))} |"]
    sealing = res.get("sealing")
    if sealing and "plain" in sealing:
        m = sealing["micro"]
        out += ["", "## Sealing personal data: append → relay → consume of realistic conversations", "",
                "| | plain (floor) | sealed + opened | ratio |", "|---|---|---|---|",
                f"| throughput | {sealing['plain']['events_per_s']:,.0f}/s | {sealing['sealed']['events_per_s']:,.0f}/s | "
                f"{_x(sealing['throughput_ratio'])} |", "",
                f"One event: seal {m['seal_us']} µs, open {m['open_us']} µs; {m['plain_bytes']} → {m['sealed_bytes']} "
                f"bytes on the wire ({m['rounds']:,} rounds)."]
    out += ["", "Every figure, unrounded: `report.json` beside this file.", ""]
    return "\n".join(out)


def plot(report: dict, path: Path) -> bool:
    ladder = report["results"].get("ladder")
    if not ladder or "rows" not in ladder:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(ladder["rows"], key=lambda r: r["offered_per_s"])
    rate = [r["offered_per_s"] for r in rows]
    ceiling = max([v for r in rows for v in (r["e2e_p99"], r["ack_p99"], r["raw_kafka"]["p99"])
                   if v is not None and not math.isinf(v) and not math.isnan(v)] + [0.001]) * 2000

    def series(key, sub=None):
        vals = [(r[sub][key] if sub else r[key]) for r in rows]
        return [ceiling if v is None or math.isinf(v) or math.isnan(v) else v * 1000 for v in vals]

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    left.plot(rate, series("e2e_p99"), "o-", color="C3", label="visitor→operator p99")
    left.plot(rate, series("e2e_p50"), "o--", color="C3", alpha=0.6, label="visitor→operator p50")
    left.plot(rate, series("ack_p99"), "s-", color="C0", label="ack p99")
    left.plot(rate, series("ack_p50"), "s--", color="C0", alpha=0.6, label="ack p50")
    left.plot(rate, series("p99", "raw_kafka"), "^-", color="C2", label="raw aiokafka p99")
    left.plot(rate, series("p50", "raw_kafka"), "^--", color="C2", alpha=0.6, label="raw aiokafka p50")
    left.axhline(100, color="grey", lw=0.8, ls=":", label="goal p99 100 ms")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("offered rate, messages/s")
    left.set_ylabel("latency, ms (top edge: not delivered)")
    left.set_title("Latency against rate")
    left.legend(fontsize=7)
    left.grid(True, which="both", alpha=0.3)
    right.plot(rate, [r["achieved_per_s"] for r in rows], "o-", color="C3", label="Parley achieved")
    right.plot(rate, [r["raw_kafka"]["achieved_per_s"] for r in rows], "^-", color="C2", label="raw aiokafka achieved")
    right.plot(rate, rate, ":", color="grey", label="offered")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("offered rate, messages/s")
    right.set_ylabel("achieved, messages/s")
    right.set_title("Throughput")
    right.legend(fontsize=7)
    right.grid(True, which="both", alpha=0.3)
    m = report["machine"]
    fig.suptitle(f"Parley make bench, {report['started_at']} UTC, {m['cpus']} CPUs, {m['memory_total_mb']:,} MB"
                 + (" (quick)" if report["quick"] else ""), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(report: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md", "plot": out_dir / "latency.png"}
    if not plot(report, paths["plot"]):
        paths.pop("plot")
    report = {**report, "files": {k: str(v) for k, v in paths.items()}}
    paths["json"].write_bytes(orjson.dumps(_clean(report), option=orjson.OPT_INDENT_2))
    paths["markdown"].write_text(markdown(report))
    return paths
