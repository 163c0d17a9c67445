"""gxlib — the operator's toolkit for the GX Protocol (Fabric ledger, CQRS backend, monitoring)."""

__version__ = "0.1.0"
