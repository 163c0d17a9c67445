"""The one rule for ledger IDs and amounts (SPEC §9), used by the command payloads, the API's paths and the
idempotency keys.

SPEC §9: "IDs (accounts, users, proposals, idempotency keys) are unambiguous: printable ASCII letters, digits
and `_ - . :` only, 1–128 characters, the same rule in the API and the chaincode. Amounts have one canonical
decimal form (no sign, spaces or leading zeros)."

So no whitespace, control, zero-width, bidi-override or byte-order-mark characters, and no look-alike letters
from other scripts (``аdmin`` with a Cyrillic ``а`` is refused, not taken for ``admin``). The chaincode cannot
import gxlib and implements the same rule; ``LEDGER_ID_PATTERN`` is kept verbatim so a drift test can compare
the two.
"""

from __future__ import annotations

import re

LEDGER_ID_PATTERN = r"[A-Za-z0-9_.:-]{1,128}"
"""A whole ledger ID (match it with ``fullmatch``, or anchor it as ``LEDGER_ID_ANCHORED`` does)."""

LEDGER_ID_ANCHORED = f"^{LEDGER_ID_PATTERN}$"
"""The same rule anchored, for JSON Schema / OpenAPI ``pattern`` (which matches anywhere unless anchored)."""

MAX_LEDGER_ID_LENGTH = 128
LEDGER_ID_DESCRIPTION = "ASCII letters, digits and _ - . : only, 1-128 characters (SPEC §9)"

# Python's ``$`` also matches before a final newline, so the check uses fullmatch on the bare pattern.
_LEDGER_ID = re.compile(LEDGER_ID_PATTERN)


def is_ledger_id(value: object) -> bool:
    """True when ``value`` is a string that follows the ledger ID rule."""
    return isinstance(value, str) and _LEDGER_ID.fullmatch(value) is not None

