"""A private address of the test's own on this host: a link holding one /32, removed afterwards.

What pods (or any other host) reach the devnet by is a non-loopback address; a test that binds the devnet there
must not take one the machine already uses, nor leave one behind. The link is a veth pair (both ends up, so it
has a carrier): a kernel without the ``dummy`` module has veth wherever containers run.

    with private_address("gxtest0", "198.18.20.1") as address: ...
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def address_in_use(address: str) -> bool:
    return f" {address}/" in _ip("-o", "addr", "show").stdout


@contextmanager
def private_address(link: str, address: str) -> Iterator[str]:
    """Add link ``link`` (a veth pair) with ``address``/32 (needs CAP_NET_ADMIN); delete the pair on exit."""
    ipaddress.IPv4Address(address)
    if address_in_use(address):
        raise RuntimeError(f"{address} is already assigned on this host; pick another test address")
    peer = f"{link}p"
    created = _ip("link", "add", link, "type", "veth", "peer", "name", peer)
    if created.returncode != 0:
        raise RuntimeError(f"ip link add {link} type veth failed: {created.stderr.strip()}")
    try:
        for args in (("addr", "add", f"{address}/32", "dev", link), ("link", "set", peer, "up"),
                     ("link", "set", link, "up")):
            done = _ip(*args)
            if done.returncode != 0:
                raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
        yield address
    finally:
        _ip("link", "del", link)
