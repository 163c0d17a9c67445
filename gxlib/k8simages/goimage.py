"""Images of static Go programs built from the Go module proxy (CoreDNS, Prometheus, Alertmanager,
kube-state-metrics).

The module is fetched with ``go mod download`` at its exact version and each program is built *inside the
module's directory* (``go build`` there, not ``go install module@version``): modules with ``replace``
directives — Prometheus has them — are refused by ``go install`` at a version, and inside the module the
``go.sum`` of the release pins every dependency. ``CGO_ENABLED=0`` makes the binaries static, ``-trimpath`` and
``-buildvcs=false`` keep host paths and VCS state out of them. The image: a :class:`StaticRoot` layer (users,
mount points, CA certificates if needed, the project's small C tools) and a layer with the programs in /bin.

    recipe = GoImageRecipe("alertmanager", "github.com/prometheus/alertmanager", "v0.27.0",
                           (GoProgram("alertmanager", "./cmd/alertmanager"),), config, root)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from gxlib.k8simages.cprogram import CCompiler, StaticCProgram
from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.goplugins import GoOverlay
from gxlib.k8simages.layer import LayerEntry, write_layer
from gxlib.k8simages.oci import ImageConfig, canonical_json
from gxlib.k8simages.recipe import ImageContent
from gxlib.k8simages.staticroot import StaticRoot
from gxlib.progress import Progress

_LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class GoProgram:
    """A main package of the module (relative to its root) and the name of its binary in /bin."""

    binary: str
    package: str


@dataclass(frozen=True)
class GoImageRecipe:
    """One image: a Go module at an exact version, the programs built from it, the root and the config."""

    name: str
    module: str
    version: str
    programs: tuple[GoProgram, ...]
    config: ImageConfig
    root: StaticRoot
    ldflags: tuple[str, ...] = ()
    build_tags: tuple[str, ...] = ()
    c_tools: tuple[StaticCProgram, ...] = ()
    # Files generated over the module's own for the build (in a copy of the module), e.g. a smaller plugin set.
    overlays: tuple[GoOverlay, ...] = ()
    go_binary: str = "go"
    cc: str = "cc"

    @cached_property
    def go_version(self) -> str:
        result = self._go(["env", "GOVERSION"], cwd=None, step="reading the Go version")
        return result.strip()

    def inputs(self) -> Mapping[str, str]:
        inputs = {
            "module": f"{self.module}@{self.version}",
            "go": self.go_version,
            "programs": ",".join(f"{p.binary}={p.package}" for p in self.programs),
            "ldflags": " ".join(self.ldflags),
            "tags": ",".join(self.build_tags),
            "config": canonical_json(self.config.to_json()).decode(),
            **self.root.inputs(),
        }
        for overlay in self.overlays:
            inputs.update(overlay.inputs())
        compiler = CCompiler(self.cc)
        for tool in self.c_tools:
            inputs.update({f"tool.{key}": value for key, value in tool.inputs(compiler).items()})
        return inputs

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        workdir.mkdir(parents=True, exist_ok=True)
        with progress.task(f"downloading {self.module}@{self.version} from the Go module proxy"):
            # Only the module itself: `go build` fetches the dependencies it compiles (a `go mod download` of the
            # whole graph also fetches test-only modules, some of which the proxy refuses).
            module_dir = self._download()
        source_dir = self._source_with_overlays(module_dir, workdir / "source")
        binaries: list[LayerEntry] = []
        for program in self.programs:
            out = workdir / "bin" / program.binary
            command = ["build", "-trimpath", "-ldflags", " ".join(("-s", "-w", *self.ldflags)), "-o", str(out)]
            if self.build_tags:
                command += ["-tags", ",".join(self.build_tags)]
            with progress.task(f"building {program.binary} {self.version} (static Go, in the module directory)"):
                self._go([*command, program.package], cwd=source_dir, step=f"building {program.binary}")
            binaries.append(LayerEntry.from_file(f"bin/{program.binary}", out, mode=0o755))
        compiler = CCompiler(self.cc)
        tools = [
            LayerEntry.from_file(
                f"bin/{tool.name}",
                tool.compile(compiler, workdir / "tools", image=self.name, progress=progress),
                mode=0o755,
            )
            for tool in self.c_tools
        ]
        base = write_layer([*self.root.entries(), *tools], workdir / "layers")
        programs = write_layer(binaries, workdir / "layers")
        return ImageContent(layers=(base, programs), config=self.config)

    def _source_with_overlays(self, module_dir: Path, target: Path) -> Path:
        """The directory to build in: the module itself, or (with overlays) a writable copy with the generated
        files written over it (Go refuses `-overlay` paths inside GOMODCACHE, and the cache is read-only)."""
        if not self.overlays:
            return module_dir
        for directory, _subdirs, files in os.walk(module_dir):
            copied = target / Path(directory).relative_to(module_dir)
            copied.mkdir(parents=True, exist_ok=True)
            for name in files:
                shutil.copyfile(Path(directory) / name, copied / name)
        for overlay in self.overlays:
            for relative, text in overlay.files(module_dir).items():
                generated = target / relative
                generated.parent.mkdir(parents=True, exist_ok=True)
                generated.write_text(text)
        return target

    def _download(self) -> Path:
        out = self._go(
            ["mod", "download", "-json", f"{self.module}@{self.version}"],
            cwd=None,
            step=f"downloading {self.module}@{self.version}",
        )
        try:
            return Path(json.loads(out)["Dir"])
        except (ValueError, KeyError) as exc:
            raise ImageBuildError(self.name, "reading `go mod download -json` output", output_tail=out[-2000:]) from exc

    def _go(self, args: list[str], *, cwd: Path | None, step: str) -> str:
        command = [self.go_binary, *args]
        env = {
            **os.environ,
            "CGO_ENABLED": "0",
            "GOTOOLCHAIN": "local",
            "GOFLAGS": "-buildvcs=false -mod=readonly",
        }
        try:
            result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise ImageBuildError(
                self.name, step, command=command, hint="install Go and put `go` on PATH, or set GX_IMAGES_GO_BINARY"
            ) from exc
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-_LOG_TAIL_LINES:])
            raise ImageBuildError(
                self.name,
                step,
                command=command,
                output_tail=tail,
                hint="check that the Go module proxy (GOPROXY) serves this exact version and that the Go toolchain "
                "is at least the module's `go` line",
            )
        return result.stdout
