"""The GX chaincode (SPEC §2): tokenomics, administration, identity and governance contracts.

Run it as a chaincode server the peers dial (chaincode as a service)::

    CHAINCODE_ID=gxtv3_1.0:<hash> CHAINCODE_SERVER_ADDRESS=127.0.0.1:7100 python -m gxchaincode
"""

from __future__ import annotations

from gxchaincode.contracts.admin import AdminContract
from gxchaincode.contracts.governance import GovernanceContract
from gxchaincode.contracts.identity import IdentityContract
from gxchaincode.contracts.tokenomics import TokenomicsContract
from gxchaincode.ids import LEDGER_ID_PATTERN
from gxshim import ContractChaincode

__version__ = "1.0"
__all__ = ["CONTRACT_CLASSES", "CONTRACT_SPECS", "LEDGER_ID_PATTERN", "gx_chaincode"]

CONTRACT_CLASSES = (TokenomicsContract, AdminContract, IdentityContract, GovernanceContract)
# How `python -m gxshim` (and `gx chaincode serve`) name the contracts: module:Class.
CONTRACT_SPECS = tuple(f"{cls.__module__}:{cls.__name__}" for cls in CONTRACT_CLASSES)


def gx_chaincode(version: str = __version__) -> ContractChaincode:
    """The chaincode with all four contracts (TokenomicsContract is the default for unqualified names)."""
    return ContractChaincode([cls() for cls in CONTRACT_CLASSES], title="gxtv3", version=version)
