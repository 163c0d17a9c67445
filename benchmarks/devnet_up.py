"""Time `gx devnet up` from nothing (warm Fabric cache), a second `up`, and `down`; measure the network's memory.

Prints one JSON object. Run: .venv/bin/python benchmarks/devnet_up.py [--port-offset 23000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from gxlib.config import DevnetSettings, FabricBuildSettings
from gxlib.devnet import processes
from gxlib.devnet.binaries import ensure_fabric
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port-offset", type=int, default=23000)
    args = parser.parse_args()
    ensure_fabric(FabricBuildSettings(), Progress(quiet=True))
    with tempfile.TemporaryDirectory(prefix="gx-bench-") as state:
        net = Devnet(DevnetSettings(state_dir=Path(state), port_offset=args.port_offset),
                     progress=Progress(quiet=True))
        started = time.monotonic()
        net.up()
        up_cold = time.monotonic() - started
        time.sleep(5)  # let start-up settle before reading memory
        pids = {n.name: processes.running_pid(n) for n in net.layout.nodes}
        rss = {name: round(_rss_kib(pid) / 1024, 1) for name, pid in pids.items() if pid}
        cpu = {name: round(_cpu_seconds(pid), 2) for name, pid in pids.items() if pid}
        started = time.monotonic()
        net.up()
        up_again = time.monotonic() - started
        started = time.monotonic()
        net.down(purge=True)
        down = time.monotonic() - started
    print(json.dumps({
        "devnet_up_from_nothing_s": round(up_cold, 2),
        "devnet_up_when_up_s": round(up_again, 2),
        "devnet_down_s": round(down, 2),
        "rss_mib": rss,
        "rss_total_mib": round(sum(rss.values()), 1),
        "cpu_seconds_at_start": cpu,
    }, indent=2))


if __name__ == "__main__":
    main()
