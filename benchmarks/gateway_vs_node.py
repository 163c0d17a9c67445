"""gxlib's Gateway client against the official Go and Node clients (hyperledger/fabric-gateway), side by side in
one run — the same as `gx bench clients` (see gxlib/bench/clients.py for what it does).

Prints JSON: every run, the median per client and level, and the ratios gxlib/go and gxlib/node (of the medians
and per round; throughput: higher is better; p95 and client CPU per tx: lower is better).

    .venv/bin/python benchmarks/gateway_vs_node.py [--clients gxlib go node] [--concurrency 10 50] [--seconds 5]
                                                   [--rounds 3] [--port-offset 23300]
"""

from __future__ import annotations

import argparse
import json

from gxlib.bench.clients import (  # noqa: F401 — ensure_go_client and go_client_path are used by the tests
    CLIENTS,
    ClientsBenchSpec,
    ensure_go_client,
    go_client_path,
    run_side_by_side,
)
from gxlib.progress import Progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS),
                        help="which clients to alternate, in this order")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every client per concurrency level")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--port-offset", type=int, default=23300)
    args = parser.parse_args()
    spec = ClientsBenchSpec(clients=tuple(args.clients), concurrency=tuple(args.concurrency), seconds=args.seconds,
                            rounds=args.rounds, warmup_seconds=args.warmup_seconds, port_offset=args.port_offset)
    print(json.dumps(run_side_by_side(spec, Progress()), indent=2))


if __name__ == "__main__":
    main()
