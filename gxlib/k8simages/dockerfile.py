"""Read a project Dockerfile as the description of a Python image: what it copies, installs and runs.

The Dockerfiles (``k8s/images/backend.Dockerfile``, ``chaincode/Dockerfile``) stay the one description of
what is in those images; the local builder reads them instead of repeating their contents. Only the small
vocabulary those files use is understood — ``FROM python:3.11-slim``, ``WORKDIR``, ``COPY``, ``RUN pip install
… .``, ``RUN useradd --uid N … NAME``, ``USER``, ``ENV``, ``EXPOSE``, ``ENTRYPOINT``, ``CMD`` — and anything else
is an error naming the line, so a Dockerfile change the local build cannot honour is noticed, not skipped.

    spec = read_dockerfile(Path("chaincode/Dockerfile"))
    spec.python_version, spec.copies, spec.config()
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.oci import ImageConfig

_PYTHON_BASE = re.compile(r"^python:(\d+\.\d+)-slim$")
# RUN lines that only clean a Docker build's caches: nothing to do when pip runs with --no-cache-dir here.
_CLEANUP = re.compile(r"^rm -rf /root/\.cache$")


@dataclass(frozen=True)
class Copy:
    """``COPY sources… dest``: sources relative to the build context, dest relative to WORKDIR (or absolute)."""

    sources: tuple[str, ...]
    dest: str


@dataclass(frozen=True)
class SystemUser:
    name: str
    uid: int


@dataclass
class DockerfileSpec:
    """What a Python-image Dockerfile says, instruction by instruction."""

    path: Path
    python_version: str = ""
    workdir: str = "/"
    copies: list[Copy] = field(default_factory=list)
    pip_install_targets: list[str] = field(default_factory=list)
    users: list[SystemUser] = field(default_factory=list)
    user: str = ""
    env: dict[str, str] = field(default_factory=dict)
    expose: list[str] = field(default_factory=list)
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()

    def config(self) -> ImageConfig:
        """The image config the Dockerfile describes (PATH as in the python:*-slim images)."""
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **self.env}
        return ImageConfig(
            entrypoint=self.entrypoint,
            cmd=self.cmd,
            env=env,
            user=self.user,
            working_dir=self.workdir,
            exposed_ports=tuple(self.expose),
            labels={"org.opencontainers.image.source": self.path.name},
        )


def read_dockerfile(path: Path) -> DockerfileSpec:
    spec = DockerfileSpec(path=path)
    for number, instruction, argument in _instructions(path):
        where = f"{path}:{number}"
        if instruction == "FROM":
            match = _PYTHON_BASE.match(argument)
            if not match:
                raise _unsupported(where, f"FROM {argument}", "only python:<X.Y>-slim bases are built locally")
            spec.python_version = match.group(1)
        elif instruction == "WORKDIR":
            spec.workdir = argument
        elif instruction == "COPY":
            words = shlex.split(argument)
            if len(words) < 2 or any(w.startswith("--") for w in words):
                raise _unsupported(where, f"COPY {argument}", "COPY takes plain sources and one destination here")
            spec.copies.append(Copy(tuple(words[:-1]), words[-1]))
        elif instruction == "RUN":
            for step in (s.strip() for s in argument.split("&&")):
                _read_run_step(spec, step, where)
        elif instruction == "USER":
            spec.user = argument
        elif instruction == "ENV":
            spec.env.update(_read_env(argument, where))
        elif instruction == "EXPOSE":
            spec.expose.extend(argument.split())
        elif instruction in ("ENTRYPOINT", "CMD"):
            exec_words = _exec_form(argument, where)
            if instruction == "ENTRYPOINT":
                spec.entrypoint = exec_words
            else:
                spec.cmd = exec_words
        else:
            raise _unsupported(where, instruction, "the local builder does not know this instruction")
    if not spec.python_version:
        raise _unsupported(str(path), "(no FROM)", "a Python image Dockerfile starts FROM python:<X.Y>-slim")
    return spec


def _read_run_step(spec: DockerfileSpec, step: str, where: str) -> None:
    words = shlex.split(step)
    if words[:2] == ["pip", "install"]:
        spec.pip_install_targets.extend(w for w in words[2:] if not w.startswith("-"))
    elif words and words[0] == "useradd" and "--uid" in words:
        spec.users.append(SystemUser(name=words[-1], uid=int(words[words.index("--uid") + 1])))
    elif not _CLEANUP.match(step):
        raise _unsupported(where, f"RUN {step}", "RUN may only pip-install, add a user or clean pip's cache")


def _read_env(argument: str, where: str) -> dict[str, str]:
    pairs = {}
    for word in shlex.split(argument):
        if "=" not in word:
            raise _unsupported(where, f"ENV {argument}", "use the ENV KEY=value form")
        key, value = word.split("=", 1)
        pairs[key] = value
    return pairs


def _exec_form(argument: str, where: str) -> tuple[str, ...]:
    try:
        words = json.loads(argument)
    except ValueError:
        words = None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise _unsupported(where, argument, "ENTRYPOINT and CMD must use the exec (JSON list) form")
    return tuple(words)


def _instructions(path: Path) -> list[tuple[int, str, str]]:
    """(line number, INSTRUCTION, argument) with comments dropped and continuation lines joined."""
    found: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(pending)
        pending = []
        instruction, _, argument = joined.partition(" ")
        found.append((start, instruction.upper(), argument.strip()))
    return found


def _unsupported(where: str, what: str, why: str) -> ImageBuildError:
    return ImageBuildError(
        where,
        f"reading {what}",
        hint=f"{why}; teach gxlib/k8simages/dockerfile.py the new instruction or keep the Dockerfile to that set",
    )
