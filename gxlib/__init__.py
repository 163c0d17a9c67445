"""gxlib — the operator's toolkit for the GX Protocol (Fabric ledger, CQRS backend, monitoring)."""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# gRPC's EventEngine client (its default since 1.6x) hands every completion across two more threads than the
# classic poller: about 3× the futex wake-ups per Gateway transaction and ~10% more client CPU per transaction
# here (issue 15). gRPC reads this once, when it is first imported, so it is set before any gxlib module imports
# grpc. An operator's own GRPC_EXPERIMENTS wins; GX_GRPC_EVENT_ENGINE_CLIENT=1 keeps gRPC's default.
if _os.environ.get("GX_GRPC_EVENT_ENGINE_CLIENT") != "1":
    _os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_client")

# jsonschema (the event validator's reference, and kubernetes-validate's) imports rfc3987_syntax whenever it is
# installed (jupyter-events pulls it in) for the "iri" formats, and that module compiles three Earley grammars with
# lark at import: 2 s alone and 5-7 s inside `import gxlib.cli` here (hundreds of thousands of mmap/munmap), paid by
# every `gx` command, service start and runbook kernel. No gxlib schema asserts a format, so the module is marked
# absent and jsonschema goes on without those two checks. A process that imported it first keeps it.
_sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
