"""``make bench``: each figure beside its ceiling, measured in the same run on the same machine.

Writes ``bench/results/latest.json`` (and a dated copy) and ``bench/results/latest.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import uvloop

from bench import gateway, growth, kafka_ceiling, pipeline, relay, replay

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

    fig, axes = plt.subplots(2, 3, figsize=(16, 8.5))
    grey, blue, red = "#bbbbbb", "#2b6cb0", "#c53030"

    def bars(
        axis: Any, labels: list[str], values: list[float], colours: list[str], texts: list[str], title: str
    ) -> None:
        drawn = axis.bar(labels, values, color=colours)
        axis.bar_label(drawn, labels=texts, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.spines[["top", "right"]].set_visible(False)
        axis.margins(y=0.25)
        axis.tick_params(axis="x", labelsize=8)

    modes = {"single_process": "one process", "process_per_service": "process per service"}
    pl = {label: results["pipeline"][mode]["pipeline"] for mode, label in modes.items()}
    parts = ["kafka", "postgresql"]
    axis = axes[0][0]
    bottoms = [0.0] * len(pl)
    for part, colour in (("kafka", grey), ("postgresql", "#8fa8c8"), ("haven", blue)):
        values = [sum(v for k, v in run["cpu_ms_per_referral"].items() if k not in (*parts, "load generator (bench)"))
                  if part == "haven" else run["cpu_ms_per_referral"].get(part, 0.0) for run in pl.values()]  # fmt: skip
        axis.bar(list(pl), values, bottom=bottoms, color=colour, label=part)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    for n, run in enumerate(pl.values()):
        text = (
            f"{run['cpu_ms_per_referral_total']:.1f} ms\n{run['referrals_per_s']:.1f} referrals/s\n"
            f"{run['records_per_referral']:.1f} records, {run['kafka_requests_per_referral']:.0f} Kafka requests"
        )
        axis.text(n, bottoms[n], text, ha="center", va="bottom", fontsize=8)
    axis.axhline(30, color=red, linestyle="--", linewidth=1)
    axis.legend(fontsize=8, loc="upper left")
    title = "CPU ms per closed-loop referral, whole stack\n(targets: ≤ 30 one process, ≤ 45 one per service)"
    axis.set_title(title, fontsize=10)
    axis.spines[["top", "right"]].set_visible(False)
    axis.margins(y=0.35)
    g, b = results["gateway"]["gateway"], results["gateway"]["bare"]
    bars(axes[0][1], ["gateway\n(GraphQL, consent, audit)", "bare Starlette\n+ asyncpg"], [g["rps"], b["rps"]],
         [blue, grey], [f"{x['rps']:,.0f} rps\np99 {x['p99_ms']:.0f} ms" for x in (g, b)],
         f"Pathway query, {results['gateway']['clients']} clients "
         f"(gateway = {results['gateway']['gateway_to_bare_rps']:.0%} of bare)")  # fmt: skip
    single = results["pipeline"]["single_process"]
    runs = [single[k] for k in ("latency_quiet", "latency_at_half_max", "latency") if k in single]
    labels = [f"{q}\nat {run['rate_per_s']:.0f}/s" for run in runs for q in ("p50", "p95", "p99")]
    values = [run[f"{q}_ms"] for run in runs for q in ("p50", "p95", "p99")]
    colours = [grey] * 3 + [blue] * 3 + [grey] * (len(values) - 6)  # half the sustained rate in blue
    title = "requestReferral → subscription, ms, log scale\n(blue: at half the sustained rate; target p99 ≤ 100)"
    bars(axes[0][2], labels, values, colours, [f"{v:,.0f}" for v in values], title)
    axes[0][2].set_yscale("log")
    axes[0][2].axhline(100, color=red, linestyle="--", linewidth=1)
    plt.setp(axes[0][2].get_xticklabels(), fontsize=7)
    growth = results["growth"]
    sizes = [k for k in growth if k.isdigit()]
    labels = [f"{int(n):,} survivors" for n in sizes]
    values = [growth[n]["pathway"]["gateway"]["p99_ms"] for n in sizes]
    bars(axes[1][0], labels, values, [blue] * len(sizes), [f"p99 {v:,.0f} ms" for v in values],
         f"Growth: pathway p99, largest / smallest = {growth['p99_large_to_small']:.2f} (target ≤ 1.2)")  # fmt: skip
    rp = results["replay"]
    bars(axes[1][1], ["replay", "target"], [rp["events_per_s"], 20_000], [blue, grey],
         [f"{rp['events_per_s']:,.0f} events/s", "20,000/s"],
         f"Rebuilding the read model from {rp['events_replayed']:,} events")  # fmt: skip
    labels, values, colours = [], [], []
    for mode, label in modes.items():
        run = results["pipeline"][mode]
        for when, memory in (("idle", run["memory_idle_mb"]), ("load", run["pipeline"]["memory_under_load_mb"])):
            labels.append(label.replace(" per ", "\nper ") + "\n" + when)
            values.append(memory.get("total", 0.0))
            colours.append(grey if when == "idle" else blue)
    bars(axes[1][2], labels, values, colours, [f"{v:,.0f} MB" for v in values],
         "Whole stack's memory, MB\n(PSS of Kafka, PostgreSQL and Haven, idle and under load)")  # fmt: skip
    plt.setp(axes[1][2].get_xticklabels(), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.app import GatewaySettings  # graphql/ is on sys.path for make bench

    started = time.time()
    port = GatewaySettings().gateway_port
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results["kafka_ceiling"] = await kafka_ceiling.measure(args.events, size=args.message_bytes)
    results["relay"] = await relay.measure(args.events)
    results["gateway"] = await gateway.measure(
        survivors=args.survivors, clients=args.clients, seconds=args.seconds, port=port + 100
    )
    results["pipeline"] = await pipeline.measure(
        loops=args.loops,
        seconds=args.pipeline_seconds,
        rate=args.rate,
        quiet_rate=args.quiet_rate,
        latency_seconds=args.latency_seconds,
        port=port,
    )
    results["growth"] = await growth.measure(
        sizes=tuple(args.growth), clients=args.clients, seconds=args.growth_seconds, loops=args.loops,
        pipeline_seconds=args.growth_seconds, port=port + 200,
    )  # fmt: skip
    # Last: it publishes a million events that every service would otherwise have to consume.
    results["replay"] = await replay.measure(args.replay_events)
    results["seconds"] = round(time.time() - started, 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="for the Kafka ceiling and the relay")
    parser.add_argument("--message-bytes", type=int, default=420, help="about one referral.requested event")
    parser.add_argument("--survivors", type=int, default=200, help="for the gateway stage")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20, help="for the gateway stage")
    parser.add_argument("--loops", type=int, default=48, help="concurrent closed loops in the pipeline")
    parser.add_argument("--pipeline-seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=100, help="referrals per second for the latency stage")
    parser.add_argument("--quiet-rate", type=float, default=5, help="a rate the stack keeps up with, for comparison")
    parser.add_argument("--latency-seconds", type=float, default=20)
    parser.add_argument("--growth", type=int, nargs="+", default=[10_000, 1_000_000], help="population sizes")
    parser.add_argument("--growth-seconds", type=float, default=15)
    parser.add_argument("--replay-events", type=int, default=1_000_000, help="referral events to publish, then replay")
    args = parser.parse_args()
    results = uvloop.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (RESULTS / "latest.json").write_text(text)
    (RESULTS / f"{results['started'].replace(':', '')}.json").write_text(text)
    plot(results, RESULTS / "latest.png")
    print(text)
    print(f"wrote {RESULTS / 'latest.json'} and {RESULTS / 'latest.png'}")


if __name__ == "__main__":
    main()
