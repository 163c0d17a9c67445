"""State keys: composite keys as Fabric encodes them, and the checks the peer's conventions need.

A composite key is ``"\\x00" + objectType + "\\x00" + attr1 + "\\x00" + ... + attrN + "\\x00"``. Simple keys must
not start with ``\\x00`` (that namespace belongs to composite keys) so range queries over the two never mix.
"""

from __future__ import annotations

from gxshim.errors import InvalidKeyError

COMPOSITE_KEY_NAMESPACE = "\x00"
MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"
# The peer treats an empty start key as "from the beginning", which would include composite keys; Fabric's
# shims start simple-key ranges at \x01 instead.
EMPTY_KEY_SUBSTITUTE = "\x01"


def _check_part(part: str, what: str) -> None:
    for ch in part:
        if ch in (MIN_UNICODE_RUNE, MAX_UNICODE_RUNE):
            raise InvalidKeyError(f"{what} {part!r} contains U+{ord(ch):04X}, which composite keys reserve")
    try:
        part.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(f"{what} {part!r} is not valid UTF-8") from exc


def create_composite_key(object_type: str, attributes: list[str] | tuple[str, ...]) -> str:
    """The composite key for ``object_type`` and its attributes (each without U+0000 / U+10FFFF)."""
    _check_part(object_type, "object type")
    key = COMPOSITE_KEY_NAMESPACE + object_type + MIN_UNICODE_RUNE
    for attr in attributes:
        _check_part(attr, "attribute")
        key += attr + MIN_UNICODE_RUNE
    return key


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """``(object_type, attributes)`` of a composite key.

    Raises :class:`InvalidKeyError` when ``key`` is not a composite key.
    """
    if not key.startswith(COMPOSITE_KEY_NAMESPACE) or not key.endswith(MIN_UNICODE_RUNE):
        raise InvalidKeyError(f"{key!r} is not a composite key")
    parts = key[1:-1].split(MIN_UNICODE_RUNE)
    return parts[0], parts[1:]


def check_simple_key(key: str, *, allow_empty: bool = False) -> None:
    """Refuse keys that would collide with the composite-key namespace (and empty keys unless allowed)."""
    if not key:
        if allow_empty:
            return
        raise InvalidKeyError("key must not be empty")
    if key.startswith(COMPOSITE_KEY_NAMESPACE):
        raise InvalidKeyError(f"simple key {key!r} must not start with U+0000 (reserved for composite keys)")


def partial_composite_range(object_type: str, attributes: list[str] | tuple[str, ...]) -> tuple[str, str]:
    """Start and end key of a range query over every composite key with this prefix."""
    start = create_composite_key(object_type, attributes)
    return start, start + MAX_UNICODE_RUNE
