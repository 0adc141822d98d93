"""`make bench`: every benchmark, each reported as ratios against a floor measured in
the same run on the same machine (these machines are shared and noisy)."""
import asyncio
import tempfile
from pathlib import Path

from bench import append_relay_consume
from parley.platform import components


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as run_dir:
        comps = components.start(Path(run_dir))
        try:
            asyncio.run(append_relay_consume.run(comps))
        finally:
            comps.stop()


if __name__ == "__main__":
    main()
