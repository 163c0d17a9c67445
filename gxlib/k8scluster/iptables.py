"""The iptables chains and rules the node adds (kube-proxy's ``KUBE-*``, the kubelet's canaries, the CNI plugins'
``CNI-*``), found by comparing ``iptables-save`` now with a snapshot taken before ``up``, and the commands that
remove them: rules that jump into a new chain first, then the new chains (flushed, deleted). Rules and chains
that were there before are left alone. With the nf_tables backend (Debian's default) the first iptables call
also creates the ``filter``/``nat``/``mangle`` tables themselves; those that did not exist before and are empty
again are deleted too."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass, field

# iptables for IPv4, ip6tables for IPv6: kubelet and kube-proxy program both.
NFT_FAMILY = {"iptables": "ip", "ip6tables": "ip6"}
FAMILIES: tuple[str, ...] = ("iptables", "ip6tables")
OWNED_PREFIXES: tuple[str, ...] = ("KUBE-", "CNI-")


@dataclass
class TableState:
    chains: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # each "-A CHAIN …" line as iptables-save prints it


def parse_save(output: str) -> dict[str, TableState]:
    """table → its chains and rules, from ``iptables-save`` output."""
    tables: dict[str, TableState] = {}
    current: TableState | None = None
    for line in output.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:].strip(), TableState())
        elif current is None or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            current.chains.append(line[1:].split()[0])
        elif line.startswith("-A "):
            current.rules.append(line)
    return tables


def snapshot(family: str) -> dict[str, TableState]:
    """The tables of ``family`` now (empty when the tool is missing or cannot read them)."""
    try:
        proc = subprocess.run([f"{family}-save"], capture_output=True, text=True, check=False, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {}
    return parse_save(proc.stdout) if proc.returncode == 0 else {}


def chain_names(tables: dict[str, TableState]) -> dict[str, list[str]]:
    return {table: list(state.chains) for table, state in tables.items()}


def cleanup_commands(now: dict[str, TableState], before: dict[str, list[str]]) -> list[list[str]]:
    """Arguments for ``iptables`` that remove what the node added: for each table, the rules of older chains
    that jump to a new chain, then every new chain flushed and deleted. A chain is "new" when it was not in
    ``before`` and carries one of ``OWNED_PREFIXES``."""
    commands: list[list[str]] = []
    for table, state in now.items():
        existed = set(before.get(table, []))
        new = [chain for chain in state.chains if chain not in existed and chain.startswith(OWNED_PREFIXES)]
        if not new:
            continue
        new_set = set(new)
        for rule in state.rules:
            words = shlex.split(rule)
            chain = words[1]
            target = words[words.index("-j") + 1] if "-j" in words[:-1] else None
            if chain not in new_set and target in new_set:
                commands.append(["-t", table, "-D", chain, *words[2:]])
        commands.extend(["-t", table, "-F", chain] for chain in new)
        commands.extend(["-t", table, "-X", chain] for chain in new)
    return commands


def remove_added(before: dict[str, dict[str, list[str]]]) -> list[str]:
    """Remove, for each family, what was added since ``before`` (family → table → chains); the chains removed,
    as ``family/table/chain``. A command that fails (already gone) is skipped."""
    removed: list[str] = []
    for family in FAMILIES:
        now = snapshot(family)
        for args in cleanup_commands(now, before.get(family, {})):
            proc = subprocess.run([family, "-w", "5", *args], capture_output=True, text=True, check=False)
            if proc.returncode == 0 and args[2] == "-X":
                removed.append(f"{family}/{args[1]}/{args[3]}")
    return removed


def nft_tables() -> list[str]:
    """``<family> <table>`` of every nftables table now (empty without ``nft``)."""
    try:
        proc = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return []
    return [line.removeprefix("table ").strip() for line in proc.stdout.splitlines() if line.startswith("table ")]


def empty_new_tables(now: dict[str, dict[str, TableState]], tables_now: list[str], tables_before: list[str]
                     ) -> list[str]:
    """The nftables tables (``ip filter``) that did not exist before and hold no iptables rule now."""
    empty = []
    for family, nft_family in NFT_FAMILY.items():
        for table, state in now.get(family, {}).items():
            name = f"{nft_family} {table}"
            if name in tables_now and name not in tables_before and not state.rules:
                empty.append(name)
    return empty


def remove_new_tables(tables_before: list[str]) -> list[str]:
    """Delete the empty tables the iptables-nft backend created since the snapshot; the tables deleted."""
    now = {family: snapshot(family) for family in FAMILIES}
    removed = []
    for name in empty_new_tables(now, nft_tables(), tables_before):
        if subprocess.run(["nft", "delete", "table", *name.split()], capture_output=True, check=False).returncode == 0:
            removed.append(name)
    return removed
