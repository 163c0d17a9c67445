"""The GX chaincode in-process: an in-memory ledger and callers with the devnet's real certificates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from gxchaincode import gx_chaincode
from gxlib.config import DevnetSettings
from gxlib.devnet.crypto import generate_crypto
from gxlib.devnet.layout import DevnetLayout, Identity
from gxshim.inmemory import Caller, InMemoryLedger


@dataclass(frozen=True)
class Callers:
    super_admin: Caller      # Org1 client with the Fabric CA attribute gx_super_admin=true
    org_admin: Caller        # Org2 MSP admin (NodeOU admin; Org2 is not a trusted issuer)
    service: Caller          # Org1 service identity (no role)
    user: Caller             # Org1 plain client
    org1_admin: Caller       # Org1 MSP admin (NodeOU admin of the MSP that bootstraps in these tests)


def _caller(ident: Identity) -> Caller:
    return Caller(ident.msp_id, ident.cert_file.read_bytes())


@pytest.fixture(scope="session")
def callers(tmp_path_factory: pytest.TempPathFactory) -> Callers:
    layout = DevnetLayout(DevnetSettings(state_dir=Path(tmp_path_factory.mktemp("cc-crypto"))))
    generate_crypto(layout)
    client = next(i for i in layout.users(layout.org("org1")) if i.name.startswith("User1"))
    return Callers(_caller(layout.super_admin), _caller(layout.admin("org2")), _caller(layout.service_identity),
                   _caller(client), _caller(layout.admin("org1")))


@pytest.fixture
def ledger() -> InMemoryLedger:
    return InMemoryLedger(gx_chaincode())
