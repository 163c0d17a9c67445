"""gxlib — the operator's toolkit for the GX Protocol (Fabric ledger, CQRS backend, monitoring)."""

import os as _os

__version__ = "0.1.0"

# gRPC's EventEngine client (its default since 1.6x) hands every completion across two more threads than the
# classic poller: about 3× the futex wake-ups per Gateway transaction and ~10% more client CPU per transaction
# here (issue 15). gRPC reads this once, when it is first imported, so it is set before any gxlib module imports
# grpc. An operator's own GRPC_EXPERIMENTS wins; GX_GRPC_EVENT_ENGINE_CLIENT=1 keeps gRPC's default.
if _os.environ.get("GX_GRPC_EVENT_ENGINE_CLIENT") != "1":
    _os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")
