"""mypy (``make typecheck``) checks types, not only names: a call with a wrong argument type and a fake whose
method drifted from its protocol are reported, the correct versions pass, and every implementation listed in
tests/unit/static_protocols.py satisfies its protocol."""

from __future__ import annotations

import ast
import functools
import re
import textwrap
from pathlib import Path

import pytest
from mypy import api

from gxlib.fabric.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parents[2]
STATIC_PROTOCOLS = ROOT / "tests" / "unit" / "static_protocols.py"

WRONG_CALL = """
from gxlib.backend.backoff import backoff_delay

delay = backoff_delay("3", base_s=1.0, max_s=8.0)
"""

RIGHT_CALL = """
from gxlib.backend.backoff import backoff_delay

delay: float = backoff_delay(3, base_s=1.0, max_s=8.0)
"""

# Same method names as Checkpointer, so isinstance() accepts it; save() takes the wrong type.
DRIFTED_FAKE = """
from gxlib.fabric.checkpoint import Checkpoint, Checkpointer


class DriftedCheckpointer:
    @property
    def checkpoint(self) -> Checkpoint | None:
        return None

    def save(self, checkpoint: int) -> None:
        pass


checkpointer: Checkpointer = DriftedCheckpointer()
"""

MATCHING_FAKE = DRIFTED_FAKE.replace("checkpoint: int", "checkpoint: Checkpoint")

# fabric_protos has no types of its own; typings/ holds stubs written from its descriptors.
WRONG_PROTO_FIELD = """
from fabric_protos.common import common_pb2

envelope = common_pb2.Envelope(payload="not bytes", signature=b"")
"""

RIGHT_PROTO_FIELD = WRONG_PROTO_FIELD.replace('"not bytes"', 'b"bytes"')


def _mypy(*targets: Path) -> tuple[int, str]:
    """mypy with the project's configuration (strict defs, plugins, overrides) on ``targets`` only."""
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"),
        *(str(t) for t in targets),
    ])
    return status, stdout + stderr


def _check_snippet(tmp_path: Path, source: str) -> tuple[int, str]:
    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(source))
    return _mypy(path)


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # The configuration's relative paths (mypy_path = "chaincode") are relative to the working directory.
    monkeypatch.chdir(ROOT)


def test_a_wrong_argument_type_in_a_call_into_gxlib_is_reported(tmp_path: Path) -> None:
    status, output = _check_snippet(tmp_path, WRONG_CALL)

    assert status == 1, output
    assert 'Argument 1 to "backoff_delay" has incompatible type "str"; expected "int"  [arg-type]' in output


def test_the_same_call_with_the_right_types_passes(tmp_path: Path) -> None:
    status, output = _check_snippet(tmp_path, RIGHT_CALL)

    assert status == 0, output


def test_a_fake_whose_method_drifted_from_its_protocol_is_reported_though_isinstance_accepts_it(
        tmp_path: Path) -> None:
    namespace: dict[str, object] = {}
    exec(compile(DRIFTED_FAKE, "drifted_fake", "exec"), namespace)
    assert isinstance(namespace["checkpointer"], Checkpointer)  # the runtime check only compares names

    status, output = _check_snippet(tmp_path, DRIFTED_FAKE)

    assert status == 1, output
    assert 'Incompatible types in assignment (expression has type "DriftedCheckpointer", variable has type ' \
           '"Checkpointer")' in output
    assert "def save(self, checkpoint: int) -> None" in output  # mypy names the method that drifted


def test_a_fake_that_matches_its_protocol_passes(tmp_path: Path) -> None:
    status, output = _check_snippet(tmp_path, MATCHING_FAKE)

    assert status == 0, output


def test_a_wrong_field_type_in_a_fabric_protobuf_message_is_reported(tmp_path: Path) -> None:
    status, output = _check_snippet(tmp_path, WRONG_PROTO_FIELD)

    assert status == 1, output
    assert 'Argument "payload" to "Envelope" has incompatible type "str"; expected "bytes | None"' in output


def test_the_same_message_with_the_right_field_types_passes(tmp_path: Path) -> None:
    status, output = _check_snippet(tmp_path, RIGHT_PROTO_FIELD)

    assert status == 0, output


def _conformance_checks() -> dict[str, range]:
    """The functions of static_protocols.py and their line ranges."""
    tree = ast.parse(STATIC_PROTOCOLS.read_text())
    return {node.name: range(node.lineno, (node.end_lineno or node.lineno) + 1)
            for node in tree.body if isinstance(node, ast.FunctionDef)}


@functools.cache
def _static_protocols_report() -> tuple[int, str]:
    return _mypy(STATIC_PROTOCOLS)


def test_the_static_protocol_checks_pass_mypy_as_a_whole() -> None:
    status, output = _static_protocols_report()

    assert status == 0, output


@pytest.mark.parametrize("check", sorted(_conformance_checks()))
def test_implementation_satisfies_its_protocol_statically(check: str) -> None:
    _, output = _static_protocols_report()
    lines = _conformance_checks()[check]
    errors = [line for line in output.splitlines()
              if (m := re.match(r".*static_protocols\.py:(\d+): error:", line)) and int(m.group(1)) in lines]

    assert errors == []
