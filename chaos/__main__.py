"""python -m chaos [--quick] [--rounds N] [--visitors N] [--messages N]: prints progress,
writes test-artifacts/chaos/report.md and report.json, exits 1 unless every figure is 0."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parley.config import REPO_ROOT

from chaos import report
from chaos.run import Settings, progress, run

# The short version, as tests/chaos runs it: one kill of each kind, fewer messages.
QUICK = Settings(visitors=6, messages=4, operators=2, rounds=1, quiet=1.0, pause=2.5, settle=60.0)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short version (one kill of each kind)")
    parser.add_argument("--rounds", type=int, help="rounds of kills (each kills every kind once)")
    parser.add_argument("--visitors", type=int)
    parser.add_argument("--messages", type=int, help="at least this many messages per visitor")
    parser.add_argument("--out", default=str(REPO_ROOT / "test-artifacts" / "chaos"))
    args = parser.parse_args()
    settings = QUICK if args.quick else Settings()
    for name in ("rounds", "visitors", "messages"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    result = run(settings, artifacts=Path(args.out))
    print(report.markdown(result))
    if not result["passed"]:
        progress(f"FAILED: {result['failures']}")
        return 1
    progress("passed: every figure is 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
