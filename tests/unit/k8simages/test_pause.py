"""The pause image: the project's own static pause program, stopped by SIGTERM, reaping orphans as PID 1."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from gxlib.k8simages import cprogram, pause
from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.pause import PauseRecipe, ensure_pause_image
from gxlib.k8simages.recipe import reference_of
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import ImageStore
from gxlib.progress import Progress
from tests.unit.k8simages.oci_archive import read_archive

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
QUIET = Progress(quiet=True)


@pytest.fixture(scope="module")
def pause_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pause program from the built image's only layer."""
    image = ImageStore(tmp_path_factory.mktemp("images")).ensure(PauseRecipe(), QUIET).image
    [layer] = read_archive(image.archive).layer_tars
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        assert tar.getnames() == ["pause"]
        data = tar.extractfile("pause").read()  # type: ignore[union-attr]
    binary = tmp_path_factory.mktemp("bin") / "pause"
    binary.write_bytes(data)
    binary.chmod(0o755)
    return binary


def test_pause_image_runs_the_static_program_as_an_unprivileged_user(tmp_path: Path) -> None:
    image = ImageStore(tmp_path).ensure(PauseRecipe(), QUIET).image
    config = read_archive(image.archive).config["config"]
    assert config["Entrypoint"] == ["/pause"]
    assert config["User"] == "65535:65535"
    assert image.reference.startswith("registry.gx.local/gx/pause:")
    assert image.compressed_size < 1_000_000


def test_pause_program_is_statically_linked(pause_binary: Path) -> None:
    ldd = subprocess.run(["ldd", str(pause_binary)], capture_output=True, text=True, check=False)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGINT])
def test_pause_program_exits_zero_on_a_stop_signal(pause_binary: Path, signo: signal.Signals) -> None:
    process = subprocess.Popen([str(pause_binary)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.2)  # let it install its handlers (a signal before that would kill it: exit -signo)
        assert process.poll() is None
        process.send_signal(signo)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()


def test_pause_program_as_pid_1_reaps_orphans_left_in_its_pid_namespace(pause_binary: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--pid", "--fork", "true"], check=False).returncode != 0:
        pytest.skip("cannot create a PID namespace here")
    sandbox = subprocess.Popen([unshare, "--pid", "--fork", "--kill-child", str(pause_binary)])
    pause_pid = _child_pid(sandbox.pid)
    try:
        # A shell in the namespace starts a short-lived background child and exits: the child is re-parented to
        # PID 1 (pause), which must reap it when it ends.
        subprocess.run(["nsenter", "-t", str(pause_pid), "-p", "--", "sh", "-c", "sleep 0.2 &"], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _children(pause_pid):
            time.sleep(0.1)
        assert _children(pause_pid) == []
        os.kill(pause_pid, signal.SIGTERM)  # as the runtime stops a sandbox
        assert sandbox.wait(timeout=10) == 0
    finally:
        sandbox.kill()


def _child_pid(parent: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = _children(parent)
        if children:
            return children[0]
        time.sleep(0.05)
    raise AssertionError(f"process {parent} started no child")


def _children(parent: int) -> list[int]:
    """PIDs (zombies included) whose parent is ``parent``."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent):
            found.append(int(status.parent.name))
    return found


def test_a_changed_pause_source_changes_the_image_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = reference_of(PauseRecipe()).tag
    edited = tmp_path / "pause.c"
    edited.write_text(cprogram.PAUSE_SOURCE.read_text() + "\n/* edited */\n")
    monkeypatch.setattr(pause, "PAUSE", cprogram.StaticCProgram("pause", edited))
    assert reference_of(PauseRecipe()).tag != before


def test_a_missing_compiler_is_reported_with_what_to_install() -> None:
    with pytest.raises(ImageBuildError) as caught:
        PauseRecipe(cc="no-such-cc").inputs()
    assert caught.value.step == "looking for the C compiler"
    assert "GX_IMAGES_CC" in str(caught.value)


def test_ensure_pause_image_builds_into_the_configured_cache_once(tmp_path: Path) -> None:
    settings = ImageSettings(cache_root=tmp_path)
    first = ensure_pause_image(settings, QUIET)
    assert first.archive.is_relative_to(tmp_path / "pause")
    assert ensure_pause_image(settings, QUIET) == first
