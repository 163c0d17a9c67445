"""The pause image: the pod sandbox's first process, a static C program of the project's own (``pause/pause.c``).

It sleeps until SIGTERM or SIGINT and reaps the children re-parented to it. The image holds only ``/pause``
(static, stripped) and runs as 65535:65535, as the kubelet's default sandbox image does.

    recipe = PauseRecipe(cc="cc")
    store.ensure(recipe, progress).image.reference  # registry.gx.local/gx/pause:<tag>
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path

from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.layer import LayerEntry, write_layer
from gxlib.k8simages.oci import ImageConfig
from gxlib.k8simages.recipe import ImageContent, file_digest
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import BuiltImage, ImageStore
from gxlib.progress import Progress

PAUSE_SOURCE = Path(__file__).resolve().parent / "pause" / "pause.c"
CFLAGS = ("-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror")
PAUSE_USER = "65535:65535"


class PauseRecipe:
    """Compiles ``pause.c`` with the host's C compiler (``cc``) into a one-file image."""

    name = "pause"

    def __init__(self, cc: str = "cc") -> None:
        self._cc = cc

    @cached_property
    def _compiler_path(self) -> str:
        path = shutil.which(self._cc)
        if path is None:
            raise ImageBuildError(
                self.name,
                "looking for the C compiler",
                hint=f"install gcc (Debian: build-essential) or point GX_IMAGES_CC at a C compiler; {self._cc!r} "
                "is not on PATH",
            )
        return path

    @cached_property
    def _compiler_version(self) -> str:
        """The compiler's first ``--version`` line: a different compiler is a different input."""
        out = subprocess.run([self._compiler_path, "--version"], capture_output=True, text=True, check=False).stdout
        return out.splitlines()[0] if out else "unknown"

    def inputs(self) -> Mapping[str, str]:
        return {"pause.c": file_digest(PAUSE_SOURCE), "cc": self._compiler_version, "cflags": " ".join(CFLAGS)}

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        workdir.mkdir(parents=True, exist_ok=True)
        binary = workdir / "pause"
        version = file_digest(PAUSE_SOURCE).split(":", 1)[1][:12]
        command = [self._compiler_path, *CFLAGS, f'-DGX_PAUSE_VERSION="{version}"', "-o", str(binary)]
        command.append(str(PAUSE_SOURCE))
        with progress.task("compiling the pause program (static)"):
            result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ImageBuildError(
                self.name,
                "compiling pause.c",
                command=command,
                output_tail="\n".join((result.stdout + result.stderr).splitlines()[-20:]),
                hint="a static build needs the C library's static archive (Debian: libc6-dev)",
            )
        layer = write_layer([LayerEntry.from_file("pause", binary, mode=0o755)], workdir / "layers")
        config = ImageConfig(
            entrypoint=("/pause",),
            user=PAUSE_USER,
            labels={"org.opencontainers.image.title": "gx pause", "org.opencontainers.image.version": version},
        )
        return ImageContent(layers=(layer,), config=config)


def ensure_pause_image(settings: ImageSettings | None = None, progress: Progress | None = None) -> BuiltImage:
    """The cached pause image (built first if its inputs changed): ``.archive`` to import, ``.reference`` to use
    as the sandbox image (containerd's ``sandbox_image``, the kubelet's ``--pod-infra-container-image``)."""
    settings = settings or ImageSettings()
    store = ImageStore(settings.cache_root)
    return store.ensure(PauseRecipe(cc=settings.cc), progress or Progress()).image
