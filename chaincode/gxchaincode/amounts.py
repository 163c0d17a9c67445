"""Amounts: unsigned 64-bit integers in precision units, every arithmetic step checked (SPEC §2)."""

from __future__ import annotations

from gxshim import ChaincodeError

PRECISION = 100_000_000  # units per coin
UINT64_MAX = 2**64 - 1


# The most digits a uint64 has; longer text is refused before int() (which refuses > 4300 digits itself).
UINT64_DIGITS = len(str(UINT64_MAX))


def parse_amount(name: str, raw: str) -> int:
    """A positive uint64 from its one canonical decimal form (SPEC §9: ASCII digits, no sign, spaces or leading
    zeros); the error names the argument and the problem."""
    if raw.startswith("-") and raw[1:].isascii() and raw[1:].isdigit():
        raise ChaincodeError(f"{name} must be greater than zero")
    if raw == "0":
        raise ChaincodeError(f"{name} must be greater than zero")
    if not raw.isascii() or not raw.isdigit() or raw.startswith("0"):
        shown = ascii(raw[:40]) + ("..." if len(raw) > 40 else "")
        raise ChaincodeError(f"{name} must be a whole number of precision units (1 coin = {PRECISION} units) "
                             f"written as plain decimal digits without sign, spaces or leading zeros, got {shown}")
    if len(raw) > UINT64_DIGITS:
        raise ChaincodeError(f"{name} has {len(raw)} digits and exceeds the uint64 maximum {UINT64_MAX}")
    value = int(raw)
    if value > UINT64_MAX:
        raise ChaincodeError(f"{name} {value} exceeds the uint64 maximum {UINT64_MAX}")
    return value


def checked_add(a: int, b: int, what: str) -> int:
    total = a + b
    if total > UINT64_MAX:
        raise ChaincodeError(f"arithmetic overflow: {what} would exceed the uint64 maximum ({a} + {b})")
    return total


def checked_sub(a: int, b: int, what: str) -> int:
    if b > a:
        raise ChaincodeError(f"arithmetic underflow: {what} would go below zero ({a} - {b})")
    return a - b


def checked_mul(a: int, b: int, what: str) -> int:
    product = a * b
    if product > UINT64_MAX:
        raise ChaincodeError(f"arithmetic overflow: {what} would exceed the uint64 maximum ({a} * {b})")
    return product


def coins(units: int) -> int:
    """Whole coins in an amount of units (rounded down), as events carry them."""
    return units // PRECISION
