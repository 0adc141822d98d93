"""`make bench`: every benchmark, each reported as ratios against a floor measured in
the same run on the same machine (these machines are shared and noisy)."""
import asyncio
import tempfile
from pathlib import Path

from bench import append_relay_consume, visitor_to_operator
from parley.platform import components


async def all_benchmarks(comps) -> None:
    floor = await append_relay_consume.run(comps)
    chat = await visitor_to_operator.run(comps)
    print(f"""visitor message -> operator's socket   ({visitor_to_operator.SAMPLES} messages, one at a time, through every service)
                      floor (raw Kafka)     parley        ratio (parley / floor)
  latency p50         {floor['p50'] * 1000:8.2f} ms       {chat['p50'] * 1000:8.2f} ms   {chat['p50'] / floor['p50']:6.1f}x
  latency p99         {floor['p99'] * 1000:8.2f} ms       {chat['p99'] * 1000:8.2f} ms   {chat['p99'] / floor['p99']:6.1f}x
""", flush=True)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as run_dir:
        comps = components.start(Path(run_dir))
        try:
            asyncio.run(all_benchmarks(comps))
        finally:
            comps.stop()


if __name__ == "__main__":
    main()
