"""The project's own small C programs (``pause``, ``kill``), compiled static with the host's C compiler.

tool = StaticCProgram("kill", KILL_SOURCE)
binary = tool.compile(CCompiler("cc"), out_dir, image="prometheus", progress=progress)
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.recipe import file_digest
from gxlib.progress import Progress

_PACKAGE_DIR = Path(__file__).resolve().parent
PAUSE_SOURCE = _PACKAGE_DIR / "pause" / "pause.c"
KILL_SOURCE = _PACKAGE_DIR / "kill" / "kill.c"
CFLAGS = ("-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror")


class CCompiler:
    """The C compiler named by ``GX_IMAGES_CC`` (default ``cc``): its path and its version line."""

    def __init__(self, command: str = "cc") -> None:
        self.command = command

    @cached_property
    def path(self) -> str:
        path = shutil.which(self.command)
        if path is None:
            raise ImageBuildError(
                "(C programs)",
                "looking for the C compiler",
                hint=f"install gcc and the static C library (Debian: build-essential) or point GX_IMAGES_CC at a "
                f"C compiler; {self.command!r} is not on PATH",
            )
        return path

    @cached_property
    def version(self) -> str:
        """The first ``--version`` line: a different compiler is a different image input."""
        out = subprocess.run([self.path, "--version"], capture_output=True, text=True, check=False).stdout
        return out.splitlines()[0] if out else "unknown"


@dataclass(frozen=True)
class StaticCProgram:
    """One C source file compiled into one static, stripped binary named ``name``."""

    name: str
    source: Path

    def inputs(self, compiler: CCompiler) -> Mapping[str, str]:
        return {f"{self.name}.c": file_digest(self.source), "cc": compiler.version, "cflags": " ".join(CFLAGS)}

    @property
    def version(self) -> str:
        """The start of the source's digest, compiled in as ``GX_<NAME>_VERSION``."""
        return file_digest(self.source).split(":", 1)[1][:12]

    def compile(self, compiler: CCompiler, out_dir: Path, *, image: str, progress: Progress) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        binary = out_dir / self.name
        define = f'-DGX_{self.name.upper()}_VERSION="{self.version}"'
        command = [compiler.path, *CFLAGS, define, "-o", str(binary), str(self.source)]
        with progress.task(f"compiling {self.name} (static C) for the {image} image"):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ImageBuildError(
                image,
                f"compiling {self.source.name}",
                command=command,
                output_tail="\n".join((result.stdout + result.stderr).splitlines()[-20:]),
                hint="a static build needs the C library's static archive (Debian: libc6-dev)",
            )
        return binary


PAUSE = StaticCProgram("pause", PAUSE_SOURCE)
KILL = StaticCProgram("kill", KILL_SOURCE)
