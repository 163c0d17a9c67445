from typing import Any

def __getattr__(name: str) -> Any: ...  # untyped gRPC stubs and servicers
