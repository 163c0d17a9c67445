"""Images built by gxlib.k8simages import into containerd under their full name and run there."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from gxlib.k8simages.pause import ensure_pause_image
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import BuiltImage
from gxlib.progress import Progress
from tests.integration.k8simages.private_containerd import Ctr, containerd_available, private_containerd

pytestmark = [
    pytest.mark.skipif(not containerd_available(), reason="needs containerd and ctr (Debian package containerd)"),
    pytest.mark.timeout(300),
]


@pytest.fixture(scope="module")
def ctr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctr]:
    with private_containerd(tmp_path_factory.mktemp("containerd")) as client:
        yield client


@pytest.fixture(scope="module")
def pause_image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return ensure_pause_image(ImageSettings(cache_root=tmp_path_factory.mktemp("images")), Progress(quiet=True))


def test_pause_archive_imports_under_its_full_name_with_all_content(ctr: Ctr, pause_image: BuiltImage) -> None:
    ctr.run("images", "import", str(pause_image.archive))
    listed = ctr.run("images", "ls", "--quiet").split()
    assert pause_image.reference in listed
    check = ctr.run("images", "check", f"name=={pause_image.reference}")
    assert "complete" in check and pause_image.manifest_digest in check


def test_pause_container_runs_until_sigterm_and_exits_zero(ctr: Ctr, pause_image: BuiltImage) -> None:
    ctr.run("images", "import", str(pause_image.archive))
    ctr.run("run", "--detach", pause_image.reference, "gx-pause-test")
    try:
        assert "RUNNING" in ctr.run("tasks", "ls")
        ctr.run("tasks", "kill", "--signal", "SIGTERM", "gx-pause-test")
        deadline = time.monotonic() + 30
        while "STOPPED" not in ctr.run("tasks", "ls") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "STOPPED" in ctr.run("tasks", "ls")
        # `ctr tasks delete` warns about a non-zero exit code; a clean stop prints no warning.
        assert "exit code" not in ctr.run("tasks", "delete", "gx-pause-test", with_stderr=True)
    finally:
        ctr.run("containers", "delete", "gx-pause-test")
