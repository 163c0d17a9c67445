"""Talking to Fabric from Python: the Gateway client (identity, signing, proposals, transactions, events) and
chaincode lifecycle."""
