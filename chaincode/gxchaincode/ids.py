"""Ledger IDs (SPEC §9): accounts, users and proposals are printable ASCII letters, digits and ``_ - . :`` only,
1–128 characters — the same rule as the API (``gxlib`` defines the same constant; a test compares them).

Bidi overrides, zero-width characters, a BOM or look-alike letters from another script would make two IDs that
an operator reads as one; the rule keeps every ID unambiguous on screen and in logs.
"""

from __future__ import annotations

import re

from gxshim import ChaincodeError

LEDGER_ID_PATTERN = r"[A-Za-z0-9_.:-]{1,128}"
MAX_ID_LENGTH = 128
_LEDGER_ID = re.compile(LEDGER_ID_PATTERN)
# How much of a refused ID the error shows (escaped, so invisible characters are visible).
_SHOWN = 40


def require_ledger_id(name: str, value: str) -> str:
    """``value`` if it is a valid ledger ID; else a ChaincodeError naming the argument ``name``."""
    if not value or not value.strip():
        raise ChaincodeError(f"{name} cannot be empty")
    if _LEDGER_ID.fullmatch(value) is None:
        shown = ascii(value[:_SHOWN]) + ("..." if len(value) > _SHOWN else "")
        raise ChaincodeError(f"{name} must be 1-{MAX_ID_LENGTH} characters of ASCII letters, digits and _ - . : "
                             f"only (got {len(value)} characters: {shown})")
    return value
