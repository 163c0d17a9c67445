"""A test workload image: Debian's static busybox (``busybox-static``) packed by gxlib.k8simages, so a pod has a
shell, an HTTP server (``httpd``), ``wget`` and ``nslookup`` — enough to prove exec, logs, probes, DNS and
Services on the real cluster. Test-only; the project's own images live in gxlib.k8simages."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gxlib.k8simages.layer import LayerEntry, write_layer
from gxlib.k8simages.oci import ImageConfig
from gxlib.k8simages.recipe import ImageContent, file_digest
from gxlib.progress import Progress

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "httpd", "wget", "nslookup", "cat", "echo", "sleep", "hostname", "ls")


class BusyboxRecipe:
    name = "gx-test-busybox"

    def inputs(self) -> Mapping[str, str]:
        return {"busybox": file_digest(BUSYBOX), "applets": " ".join(APPLETS)}

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        entries = [LayerEntry.from_file("bin/busybox", BUSYBOX, mode=0o755),
                   *(LayerEntry.symlink(f"bin/{applet}", "busybox") for applet in APPLETS),
                   LayerEntry.directory("tmp", mode=0o1777),
                   LayerEntry.from_bytes("www/index.html", b"gx cluster test\n")]
        layer = write_layer(entries, workdir / "layers")
        return ImageContent(layers=(layer,), config=ImageConfig(entrypoint=("/bin/sh",),
                                                                env={"PATH": "/bin"}))
