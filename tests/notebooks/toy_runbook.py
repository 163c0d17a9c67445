"""A toy runbook for the machinery's tests: one step that writes a file, checks that can be made to fail, a secret."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from gxlib.runbook.parameters import RunbookParameters, secret
from gxlib.runbook.registry import RunbookSpec

NOTEBOOKS_DIR = Path(__file__).resolve().parent
TOKEN_VARIABLE = "GX_TOY_TOKEN"


class ToyParameters(RunbookParameters):
    marker_file: str = Field(default="toy-marker.txt", description="the file the toy step creates")
    greeting: str = Field(default="hello", description="written into the marker file")
    fail_check: bool = Field(default=False, description="make the toy check fail")
    api_token: SecretStr | None = secret(TOKEN_VARIABLE, "a bearer token the notebook prints (to prove redaction)")


TOY = RunbookSpec("toy-runbook", "Toy runbook", "Exercises steps, checks, secrets and records.", ToyParameters)
