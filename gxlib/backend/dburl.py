"""Database URLs as they may be shown: the password replaced by ``***`` (status output, logs, errors)."""

from __future__ import annotations

import re

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

REDACTED = "***"
# user:password@ in a URL that SQLAlchemy cannot parse (the password is still a secret), with or without a scheme.
_USERINFO_PASSWORD = re.compile(r"(?P<head>(?:^|://)[^/?#@:]*):[^/?#@]*@")


def redacted_database_url(url: str) -> str:
    """``url`` with its password replaced by ``***``; a URL without a password is returned unchanged."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return _USERINFO_PASSWORD.sub(lambda m: f"{m['head']}:{REDACTED}@", url)
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)
