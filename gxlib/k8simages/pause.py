"""The pause image: the pod sandbox's first process, a static C program of the project's own (``pause/pause.c``).

It sleeps until SIGTERM or SIGINT and reaps the children re-parented to it. The image holds only ``/pause``
(static, stripped) and runs as 65535:65535, as the kubelet's default sandbox image does.

    recipe = PauseRecipe(cc="cc")
    store.ensure(recipe, progress).image.reference  # registry.gx.local/gx/pause:<tag>
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gxlib.k8simages.cprogram import PAUSE, CCompiler
from gxlib.k8simages.layer import LayerEntry, write_layer
from gxlib.k8simages.oci import ImageConfig
from gxlib.k8simages.recipe import ImageContent
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import BuiltImage, ImageStore
from gxlib.progress import Progress

PAUSE_USER = "65535:65535"


class PauseRecipe:
    """Compiles ``pause.c`` with the host's C compiler (``cc``) into a one-file image."""

    name = "pause"

    def __init__(self, cc: str = "cc") -> None:
        self._compiler = CCompiler(cc)

    def inputs(self) -> Mapping[str, str]:
        return PAUSE.inputs(self._compiler)

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        binary = PAUSE.compile(self._compiler, workdir, image=self.name, progress=progress)
        layer = write_layer([LayerEntry.from_file("pause", binary, mode=0o755)], workdir / "layers")
        config = ImageConfig(
            entrypoint=("/pause",),
            user=PAUSE_USER,
            labels={"org.opencontainers.image.title": "gx pause", "org.opencontainers.image.version": PAUSE.version},
        )
        return ImageContent(layers=(layer,), config=config)


def ensure_pause_image(settings: ImageSettings | None = None, progress: Progress | None = None) -> BuiltImage:
    """The cached pause image (built first if its inputs changed): ``.archive`` to import, ``.reference`` to use
    as the sandbox image (containerd's ``sandbox_image``, the kubelet's ``--pod-infra-container-image``)."""
    settings = settings or ImageSettings()
    store = ImageStore(settings.cache_root)
    return store.ensure(PauseRecipe(cc=settings.cc), progress or Progress()).image
