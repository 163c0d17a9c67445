"""``python -m gxshim module:Class ...`` — serve contracts as a chaincode (see gxshim.serve)."""

import sys

from gxshim.serve import main

sys.exit(main())
