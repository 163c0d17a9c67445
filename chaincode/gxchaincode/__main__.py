"""``python -m gxchaincode`` (or ``gx-chaincode``): serve the GX contracts as a chaincode server.

CHAINCODE_ID (the package ID) and CHAINCODE_SERVER_ADDRESS come from the environment; see gxshim.serve.
"""

from __future__ import annotations

import sys

from gxchaincode import CONTRACT_SPECS
from gxshim.serve import main as serve_main


def main() -> int:
    return serve_main([*CONTRACT_SPECS, *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
