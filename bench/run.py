"""``make bench``: each figure beside its ceiling, measured in the same run on the same machine.

Writes ``bench/results/latest.json`` (and a dated copy) and ``bench/results/latest.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench import gateway, kafka_ceiling, relay, replay

RESULTS = Path(__file__).with_name("results")


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(int(meminfo[1]) / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (throughput, pathway) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = ["raw Kafka\nproduce→consume", "bare producer", "outbox relay"]
    values = [
        results["kafka_ceiling"]["messages_per_s"],
        results["relay"]["raw_producer_events_per_s"],
        results["relay"]["relay_events_per_s"],
    ]
    bars = throughput.bar(names, values, color=["#999999", "#bbbbbb", "#2b6cb0"])
    throughput.bar_label(bars, labels=[f"{v:,.0f}/s" for v in values])
    throughput.set_title(f"Events per second (relay = {results['relay']['relay_to_raw_ratio']:.0%} of bare producer)")
    g, b = results["gateway"]["gateway"], results["gateway"]["bare"]
    labels = ["gateway\n(GraphQL, consent, audit)", "bare Starlette\n+ asyncpg"]
    bars = pathway.bar(labels, [g["rps"], b["rps"]], color=["#2b6cb0", "#bbbbbb"])
    pathway.bar_label(
        bars,
        labels=[f"{g['rps']:,.0f} rps\np99 {g['p99_ms']:.0f} ms", f"{b['rps']:,.0f} rps\np99 {b['p99_ms']:.0f} ms"],
    )
    pathway.set_title(
        f"Pathway query, {results['gateway']['clients']} clients "
        f"(gateway = {results['gateway']['gateway_to_bare_rps']:.0%} of bare)"
    )
    for axis in (throughput, pathway):
        axis.spines[["top", "right"]].set_visible(False)
        axis.margins(y=0.2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.time()
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results["kafka_ceiling"] = await kafka_ceiling.measure(args.events, size=args.message_bytes)
    results["relay"] = await relay.measure(args.events)
    results["gateway"] = await gateway.measure(
        survivors=args.survivors, clients=args.clients, seconds=args.seconds, port=args.port
    )
    results["replay"] = await replay.measure(args.replay_events)
    results["seconds"] = round(time.time() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--message-bytes", type=int, default=420, help="about one referral.requested event")
    parser.add_argument("--survivors", type=int, default=200)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--port", type=int, default=28100)
    parser.add_argument("--replay-events", type=int, default=50_000, help="referral events to publish, then replay")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"{results['started'].replace(':', '')}.json").write_text(text)
    plot(results, RESULTS / "latest.png")
    print(text)
    print(f"wrote {RESULTS / 'latest.json'} and {RESULTS / 'latest.png'}")


if __name__ == "__main__":
    main()
