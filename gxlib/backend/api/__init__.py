"""The HTTP API (SPEC §3.4): commands in, command status and read models out."""

from gxlib.backend.api.app import create_app

__all__ = ["create_app"]
