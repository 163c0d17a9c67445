"""``python -m gxchaincode``: serve the GX contracts (CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS from the env)."""

from __future__ import annotations

import sys

from gxchaincode import CONTRACT_SPECS
from gxlib.shim.serve import main

if __name__ == "__main__":
    sys.exit(main([*CONTRACT_SPECS, *sys.argv[1:]]))
