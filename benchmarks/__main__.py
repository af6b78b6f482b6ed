"""`make bench`: every benchmark table, on data generated into var/bench (kept between runs)."""

import argparse
import os
import platform
from pathlib import Path

from benchmarks import (
    burst,
    history,
    live,
    load,
    report,
    scale,
    service,
    targets,
    trends,
    uploads,
    webhooks,
)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--runs", type=int, default=3, help="timings per measure; the best is kept")
    parser.add_argument("--data", type=Path, default=Path("var/bench"), help="generated data cache")
    parser.add_argument(
        "--only",
        choices=[
            "report",
            "live",
            "service",
            "history",
            "trends",
            "uploads",
            "burst",
            "webhooks",
            "load",
            "scale",
        ],
        help="run one group of benchmarks only",
    )
    parser.add_argument(
        "--load-seconds",
        type=float,
        default=30.0,
        help="how long the load benchmark reads statuses (30 s; less for a quick run)",
    )
    parser.add_argument(
        "--load-rate",
        type=int,
        default=load.READS_PER_SECOND,
        help=f"status reads per second in the load ({load.READS_PER_SECOND})",
    )
    parser.add_argument(
        "--load-connections",
        type=int,
        default=load.READ_CONNECTIONS,
        help=f"connections sending the status reads ({load.READ_CONNECTIONS})",
    )
    parser.add_argument(
        "--scale-runs",
        type=int,
        default=1,
        help="reports per configuration of the scale-out (1: each report takes about 25 s)",
    )
    parser.add_argument(
        "--scale-stores",
        type=int,
        default=scale.STORES,
        help=f"stores of the scale-out benchmark ({scale.STORES:,}; fewer for a quick run)",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    if args.only in (None, "report"):
        report.run(args.data, runs=args.runs)
    if args.only in (None, "live"):
        live.run(args.data)
    if args.only in (None, "service"):
        service.run(args.data, runs=args.runs)
    if args.only in (None, "history"):
        history.run(args.data, runs=args.runs)
    if args.only in (None, "trends"):
        trends.run(args.data)
    if args.only in (None, "uploads"):
        uploads.run(args.data)
    if args.only in (None, "burst"):
        burst.run()
    if args.only in (None, "load"):
        load.run(
            args.data,
            seconds=args.load_seconds,
            rate=args.load_rate,
            connections=args.load_connections,
        )
    if args.only in (None, "webhooks"):
        webhooks.run()
    if args.only in (None, "scale"):
        scale.run(args.data, runs=args.scale_runs, stores=args.scale_stores)
    targets.print_targets()


if __name__ == "__main__":
    main()
