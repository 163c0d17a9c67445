"""``python -m gxlib.shim module:Class ...`` — serve contracts as a chaincode (see gxlib.shim.serve)."""

import sys

from gxlib.shim.serve import main

sys.exit(main())
