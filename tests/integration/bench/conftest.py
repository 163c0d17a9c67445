"""The GX chaincode on the session devnet, deployed with `gx chaincode deploy`'s code path (idempotent: another
directory's fixture may have deployed the same version already in this session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gxlib.chaincode.deploy import ChaincodeOperator, DeployReport
from gxlib.config import ChaincodeSettings
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress


@pytest.fixture(scope="session")
def bench_gxtv3(devnet: Devnet) -> Iterator[DeployReport]:
    """gxtv3 1.0 committed on the session devnet with its two chaincode servers running."""
    operator = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
    report = operator.deploy("1.0")
    try:
        yield report
    finally:
        operator.stop_servers()
