"""Operating the GX chaincode on the local profile: its servers (one per org) and deploy/upgrade/status."""
