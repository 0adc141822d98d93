"""`python -m bench --quick`: every section of `make bench` runs at tiny sizes and the
report is written whole - report.json parses and holds every section, report.md tells
them, latency.png is a PNG. No timing is asserted: the figures of a smoke run on a
shared machine mean nothing; only that the harness works end to end."""
import json
import os
import subprocess
import sys

from parley.config import REPO_ROOT

# Every section but the backbone's (append -> relay -> consume), which its own integration
# tests cover and which would add a consumer group's start-up to the run.
SECTIONS = ["sealing", "memory", "ladder", "live", "fanout", "scaleout", "cost", "rebuild"]


def test_quick_bench_writes_a_whole_report(tmp_path):
    out = tmp_path / "bench"
    # Its own Kafka and PostgreSQL, like `make bench` (never the suite's: the bench's
    # services use their real schema and topic names).
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")}
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out),
                           "--sections", ",".join(SECTIONS)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert "[bench] == ladder ==" in done.stderr  # progress is shown as it runs

    report = json.loads((out / "report.json").read_text())
    assert report["quick"] is True
    assert report["machine"]["cpus"] >= 1 and report["machine"]["memory_total_mb"] > 0
    assert report["sections"] == SECTIONS
    for name in SECTIONS:
        assert "error" not in report["results"][name], report["results"][name]
    ladder = report["results"]["ladder"]
    kinds = [r["kind"] for r in ladder["rows"]]   # the ladder, 2x sustainable, then the most the visitors offer
    assert kinds == ["ladder"] * (len(kinds) - 2) + ["overload", "most"], kinds
    assert ladder["rows"][-1]["offered_per_s"] > ladder["rows"][-2]["offered_per_s"]
    for row in ladder["rows"]:
        assert {"offered_per_s", "achieved_per_s", "e2e_p50", "e2e_p99", "ack_p50", "ack_p99", "raw_kafka",
                "cpu_s"} <= row.keys()
        assert row["sent"] > 0 and "rate_limited" not in row["errors"], row  # under every limit (busy is a finding)
    assert report["results"]["memory"]["gateway"]["sockets"] == report["results"]["memory"]["bare"]["sockets"]
    live = report["results"]["live"]   # the ladder's visitors browsed, and every one of them was listed live
    assert live["page_frames_sent"] > 0 and live["listed_total"] >= live["visitors"]
    assert all(row["delivered"] == row["sent"] for kind in ("idle", "browsing") for row in live["rows"][kind])
    assert report["results"]["fanout"]["unstalled"]["pushes_expected"] > 0
    assert report["results"]["fanout"]["stalled"]["pushes_expected"] > 0
    scale = report["results"]["scaleout"]   # the second replica and gateway started, carried messages, stopped
    assert all(scale[run]["delivered"] > 0 and scale[run]["not_delivered"] == 0 for run in ("one", "two", "one_again"))
    assert len(report["results"]["cost"]["points"]) == 2
    assert report["results"]["rebuild"]["rebuild"]["finished"] is True
    sealing = report["results"]["sealing"]
    assert sealing["sealed"]["events"] == sealing["plain"]["events"] > 0   # every event consumed, opened, both ways

    markdown = (out / "report.md").read_text()
    for heading in ("## Verdicts", "## Rate ladder", "## Cost per message", "## Memory per idle socket",
                    "## Live visitors", "## Fan-out with a stalled reader", "## Scale-out", "## Inbox projection rebuild", "latency.png"):
        assert heading in markdown, heading
    assert (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "logs" / "gateway.log").exists()
