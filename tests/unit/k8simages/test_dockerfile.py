"""The Dockerfiles stay the description of the Python images: the local build reads them, and refuses what it
cannot honour."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.k8simages.catalog import BACKEND_DOCKERFILE, CHAINCODE_DOCKERFILE, backend, chaincode
from gxlib.k8simages.dockerfile import Copy, SystemUser, read_dockerfile
from gxlib.k8simages.errors import ImageBuildError


def test_backend_image_runs_what_the_backend_dockerfile_says() -> None:
    spec = backend().spec()
    config = spec.config().to_json()
    assert config["Entrypoint"] == ["gx"] and config["Cmd"] == ["serve", "api"]
    assert config["User"] == "10001"
    assert set(config["ExposedPorts"]) == {"8080/tcp", "9101/tcp", "9102/tcp"}
    assert "GX_BACKEND_API_HOST=0.0.0.0" in config["Env"]
    assert spec.users == [SystemUser("gx", 10001)]
    # FROM python:3.11-slim → Debian's python3.11, and the C++ runtime that slim image has (grpcio needs it)
    assert backend().root().packages == ("python3.11", "libstdc++6")


def test_chaincode_image_runs_the_ccaas_server_as_chaincode_dockerfile_says() -> None:
    spec = chaincode().spec()
    assert spec.entrypoint == ("gx-chaincode",)
    assert spec.env["CHAINCODE_SERVER_ADDRESS"] == "0.0.0.0:9999"
    assert spec.copies == [
        Copy(("pyproject.toml",), "./"),
        Copy(("gxshim",), "./gxshim"),
        Copy(("gxchaincode",), "./gxchaincode"),
    ]
    assert spec.pip_install_targets == ["."]


def test_a_change_to_a_copied_source_changes_the_backend_input_digest(tmp_path: Path) -> None:
    context = tmp_path / "repo"
    (context / "pkg").mkdir(parents=True)
    (context / "pkg" / "mod.py").write_text("x = 1\n")
    dockerfile = context / "Dockerfile"
    dockerfile.write_text('FROM python:3.11-slim\nCOPY pkg ./pkg\nRUN pip install .\nENTRYPOINT ["app"]\n')
    recipe = type(backend())(name="demo", dockerfile=dockerfile, context=context)
    before = dict(recipe.inputs())
    (context / "pkg" / "mod.py").write_text("x = 2\n")
    after = dict(recipe.inputs())
    assert before["copy:pkg"] != after["copy:pkg"]
    assert before["dockerfile"] == after["dockerfile"]


@pytest.mark.parametrize(
    "line",
    [
        "FROM debian:bookworm",
        "RUN apt-get install -y curl",
        "ADD https://example.org/x /x",
        "ENTRYPOINT gx serve",
        "COPY --chown=1:1 a ./",
    ],
)
def test_an_instruction_the_local_build_cannot_honour_is_refused_with_its_line(tmp_path: Path, line: str) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"FROM python:3.11-slim\n# comment\n{line}\n" if not line.startswith("FROM") else line)
    with pytest.raises(ImageBuildError) as caught:
        read_dockerfile(dockerfile)
    assert caught.value.image.startswith(str(dockerfile))


def test_continuation_lines_are_one_instruction(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM python:3.11-slim\nENV A=1 \\\n    B="two words"\nCMD ["x"]\n')
    spec = read_dockerfile(dockerfile)
    assert spec.env == {"A": "1", "B": "two words"}


def test_the_repository_dockerfiles_are_the_ones_the_catalog_reads() -> None:
    assert BACKEND_DOCKERFILE.is_file() and CHAINCODE_DOCKERFILE.is_file()
    assert read_dockerfile(BACKEND_DOCKERFILE).workdir == "/opt/gxlib"
