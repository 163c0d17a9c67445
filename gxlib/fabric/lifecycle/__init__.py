"""Chaincode lifecycle: CCaaS packages and package IDs, install, approve, commit."""
