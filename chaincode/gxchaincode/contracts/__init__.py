"""The four contracts of the GX chaincode."""
