"""The chaos run's report: one table of figures (each must be 0 but the informative ones),
the kills with how long each component was down, the projection comparison; written
as report.md and report.json (test-artifacts/chaos by default)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from chaos.checks import Figures
from chaos.kills import Kill
from chaos.rebuild import TableCheck

LABELS = {
    "acknowledged_lost": "acknowledged messages lost",
    "duplicates_stored": "duplicates stored",
    "duplicates_seen_by_visitors": "duplicates a visitor saw",
    "duplicates_seen_by_operators": "duplicates an operator saw",
    "conversations_out_of_order": "conversations out of order",
    "not_delivered": "acknowledged but never shown to the other side",
    "never_acknowledged": "messages never acknowledged (gave up) or refused for good",
    "unanswered": "visitor messages without an acknowledged reply",
    "projections_differing": "projection tables differing from a rebuild",
    "errors_5xx_outside_kills": "5xx answers outside kill windows",
}


def as_dict(settings: dict, figures: Figures, kills: list[Kill], tables: list[TableCheck], seconds: float) -> dict:
    return {"settings": settings, "seconds": round(seconds, 1), "passed": not figures.failures(),
            "figures": dataclasses.asdict(figures), "failures": figures.failures(),
            "kills": [dataclasses.asdict(k) for k in kills],
            "projections": [dataclasses.asdict(t) | {"equal": t.equal} for t in tables]}


def markdown(report: dict) -> str:
    f = report["figures"]
    lines = ["# Chaos run", "",
             f"{report['settings']['visitors']} visitors x {report['settings']['messages']} messages, "
             f"{report['settings']['operators']} operators, {len(report['kills'])} kills in "
             f"{report['settings']['rounds']} round(s), {report['seconds']} s. "
             f"**{'PASSED' if report['passed'] else 'FAILED'}**", "",
             "| figure | value | must be |", "|---|---:|---:|"]
    for name in Figures.FAILING:
        lines.append(f"| {LABELS[name]} | {f[name]} | 0 |")
    lines += [f"| messages acknowledged (visitor messages + replies) | {f['acknowledged']} | |",
              f"| conversations | {f['conversations']} | |",
              f"| conversations erased before the rebuild | {f['conversations_erased']} | |",
              f"| 5xx answers inside kill windows | {sum(f['errors_5xx_in_kills'].values())} "
              f"({', '.join(f'{k}: {v}' for k, v in sorted(f['errors_5xx_in_kills'].items())) or 'none'}) | |",
              f"| connection failures (refused, reset) | {f['connection_failures']} | |",
              f"| socket reconnects | {f['reconnects']} | |",
              f"| events an operator got again, dropped by seq | {f['redeliveries_absorbed']} | |",
              "", "## Kills", "", "| # | target | down (s) |", "|---:|---|---:|"]
    for i, k in enumerate(report["kills"], 1):
        lines.append(f"| {i} | {k['target']} | {k['down_s']} |")
    lines += ["", "## Projections against a rebuild from the topics", "",
              "| table | live rows | rebuilt rows | missing | extra | different |", "|---|---:|---:|---:|---:|---:|"]
    for t in report["projections"]:
        lines.append(f"| {t['schema']}.{t['table']} | {t['live_rows']} | {t['rebuilt_rows']} | {t['missing']} | "
                     f"{t['extra']} | {t['different']} |")
    lines += ["", "How to read it: docs/chaos.md.", ""]
    return "\n".join(lines)


def write(report: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (folder / "report.md").write_text(markdown(report))
    return folder / "report.md"
