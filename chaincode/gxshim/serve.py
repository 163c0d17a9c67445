"""Run contracts as a chaincode server from the command line or from ``gx chaincode serve``.

Environment (as in Fabric's CCaaS deployments):

* ``CHAINCODE_ID`` — the package ID the peer knows the chaincode by (``label:sha256``), required;
* ``CHAINCODE_SERVER_ADDRESS`` — where to listen, ``host:port``, required;
* ``CHAINCODE_TLS_CERT`` / ``CHAINCODE_TLS_KEY`` — PEM files; both set turns TLS on;
* ``CHAINCODE_CLIENT_CA_CERT`` — PEM file; set, the peer must present a client certificate it signed.

    python -m gxshim tests.integration.testcc:TestContract [more.module:OtherContract ...]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from gxshim.contract import Contract, ContractChaincode
from gxshim.errors import ShimError
from gxshim.server import ChaincodeServer, ServerOptions, TLSConfig

log = logging.getLogger(__name__)


class ServeConfigError(ShimError):
    """The chaincode server's settings (environment or contract list) are incomplete or wrong."""


def load_contract(spec: str) -> Contract:
    """Import ``module:Class`` and instantiate the contract class (it must take no arguments)."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ServeConfigError(f"contract {spec!r} must be given as module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ServeConfigError(f"cannot import module {module_name!r} for contract {spec!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, Contract):
        raise ServeConfigError(f"{spec!r} is not a Contract subclass")
    return cls()


def tls_from_environment(env: Mapping[str, str]) -> TLSConfig | None:
    cert, key = env.get("CHAINCODE_TLS_CERT"), env.get("CHAINCODE_TLS_KEY")
    if not cert and not key:
        return None
    if not (cert and key):
        raise ServeConfigError("CHAINCODE_TLS_CERT and CHAINCODE_TLS_KEY must be set together")
    client_ca = env.get("CHAINCODE_CLIENT_CA_CERT")
    try:
        return TLSConfig.from_files(Path(cert), Path(key), Path(client_ca) if client_ca else None)
    except OSError as exc:
        raise ServeConfigError(f"cannot read the chaincode TLS files: {exc}") from exc


def build_server(contracts: Sequence[str | Contract], env: Mapping[str, str] | None = None,
                 options: ServerOptions | None = None) -> ChaincodeServer:
    """A (not yet started) server for ``contracts`` configured from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    missing = [name for name in ("CHAINCODE_ID", "CHAINCODE_SERVER_ADDRESS") if not env.get(name)]
    if missing:
        raise ServeConfigError(f"{' and '.join(missing)} must be set",
                               hint="CHAINCODE_ID is the package ID (label:hash) the peer installed")
    loaded = [load_contract(c) if isinstance(c, str) else c for c in contracts]
    if not loaded:
        raise ServeConfigError("no contract given")
    chaincode = ContractChaincode(loaded, title=env["CHAINCODE_ID"].split(":")[0])
    return ChaincodeServer(env["CHAINCODE_ID"], env["CHAINCODE_SERVER_ADDRESS"], chaincode,
                           tls=tls_from_environment(env), options=options)


def serve(contracts: Sequence[str | Contract], env: Mapping[str, str] | None = None) -> None:
    """Serve until SIGTERM/SIGINT; what ``python -m gxshim`` and ``gx chaincode serve`` run."""
    server = build_server(contracts, env).start()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"chaincode {server.chaincode_id} listening on {server.address}", flush=True)
    server.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gxshim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("contracts", nargs="+", metavar="module:Class")
    parser.add_argument("--log-level", default=os.environ.get("CHAINCODE_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(args.contracts)
    except ShimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
