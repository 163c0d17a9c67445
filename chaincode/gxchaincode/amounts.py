"""Amounts: unsigned 64-bit integers in precision units, every arithmetic step checked (SPEC §2)."""

from __future__ import annotations

from gxshim import ChaincodeError

PRECISION = 100_000_000  # units per coin
UINT64_MAX = 2**64 - 1


def parse_amount(name: str, raw: str) -> int:
    """A positive uint64 from its decimal text; the error names the argument and the problem."""
    text = raw.strip()
    if text.startswith("-") and text[1:].isdigit():
        raise ChaincodeError(f"{name} must be greater than zero")
    if not text.isascii() or not text.isdigit():
        raise ChaincodeError(f"{name} must be a whole number of precision units (1 coin = {PRECISION} units), "
                             f"got {raw!r}")
    value = int(text)
    if value == 0:
        raise ChaincodeError(f"{name} must be greater than zero")
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
