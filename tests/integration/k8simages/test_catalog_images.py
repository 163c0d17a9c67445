"""Every image of the catalog, built into the real cache (~/.cache/gxlib/images, reused when its inputs have not
changed), imports into a private containerd under its full name and runs what it is for.

Cold, the Go images take minutes each and the Debian images about a minute each; warm, the whole file takes
seconds plus the container starts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gxlib.k8simages.catalog import images
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import BuiltImage, ImageStore
from gxlib.progress import Progress
from tests.integration.k8simages.private_containerd import Ctr, containerd_available, private_containerd

# Building every catalog image from nothing takes longer than a CI run may (Go builds of Prometheus ~6–19 min,
# CoreDNS, kube-state-metrics, Alertmanager, three Debian roots): `make test-images` runs this file; `make test` runs
# it when GX_TEST_IMAGE_CATALOG=1 asks for it.
RUN_CATALOG = os.environ.get("GX_TEST_IMAGE_CATALOG") == "1"

pytestmark = [
    pytest.mark.skipif(not containerd_available(), reason="needs containerd and ctr (Debian package containerd)"),
    pytest.mark.skipif(not RUN_CATALOG, reason="builds every catalog image from source (Prometheus alone takes 6–19 "
                                                "min cold); run it with `make test-images` (GX_TEST_IMAGE_CATALOG=1)"),
    pytest.mark.timeout(3600),
]


@pytest.fixture(scope="module")
def built() -> dict[str, BuiltImage]:
    settings = ImageSettings()
    store = ImageStore(settings.cache_root)
    return {recipe.name: store.ensure(recipe, Progress()).image for recipe in images(settings)}


@pytest.fixture(scope="module")
def ctr(tmp_path_factory: pytest.TempPathFactory, built: dict[str, BuiltImage]) -> Iterator[Ctr]:
    with private_containerd(tmp_path_factory.mktemp("containerd")) as client:
        for image in built.values():
            client.run("images", "import", str(image.archive), timeout=600)
        yield client


def test_every_catalog_image_is_listed_by_containerd_under_its_full_name(
    ctr: Ctr, built: dict[str, BuiltImage]
) -> None:
    listed = set(ctr.run("images", "ls", "--quiet").split())
    assert {image.reference for image in built.values()} <= listed


@pytest.mark.parametrize(
    ("name", "command", "expected"),
    [
        ("prometheus", ["/bin/prometheus", "--version"], "version 2.55.1"),
        ("alertmanager", ["/bin/alertmanager", "--version"], "version 0.27.0"),
        ("kube-state-metrics", ["/bin/kube-state-metrics", "version"], "v2.20.0"),
        ("coredns", ["/bin/coredns", "-version"], "CoreDNS-1.15.0"),
        ("backend", ["gx", "--help"], "serve"),
        # The image installs gxlib without gxlib[runbooks]: each of the three services must still start.
        ("backend", ["gx", "serve", "api", "--help"], "Usage: gx serve api"),
        ("backend", ["gx", "serve", "submitter", "--help"], "Usage: gx serve submitter"),
        ("backend", ["gx", "serve", "projector", "--help"], "Usage: gx serve projector"),
    ],
)
def test_image_runs_its_program(
    ctr: Ctr, built: dict[str, BuiltImage], name: str, command: list[str], expected: str
) -> None:
    output = ctr.run("run", "--rm", built[name].reference, f"gx-test-{name}", *command, with_stderr=True)
    assert expected in output


def test_backend_image_leaves_the_runbook_dependencies_out_and_says_so(ctr: Ctr, built: dict[str, BuiltImage]) -> None:
    with pytest.raises(AssertionError, match=r"pip install 'gxlib\[runbooks\]'"):
        ctr.run("run", "--rm", built["backend"].reference, "gx-test-backend-runbook", "gx", "runbook", "list")


def test_coredns_image_has_the_corefiles_plugins_and_not_the_others(ctr: Ctr, built: dict[str, BuiltImage]) -> None:
    listed = set(ctr.run("run", "--rm", built["coredns"].reference, "gx-test-coredns-plugins", "/bin/coredns",
                         "-plugins").split())
    assert {"kubernetes", "cache", "errors", "health", "ready", "loop", "reload"} <= listed
    assert not {"forward", "etcd", "route53", "file", "hosts"} & listed


def test_prometheus_image_refuses_a_discovery_it_was_built_without(
    ctr: Ctr, built: dict[str, BuiltImage], tmp_path: Path
) -> None:
    (tmp_path / "prometheus.yml").write_text(
        "scrape_configs:\n  - job_name: consul\n    consul_sd_configs:\n      - server: 127.0.0.1:8500\n"
    )
    tmp_path.chmod(0o755)  # Prometheus runs as nobody
    with pytest.raises(AssertionError, match="consul_sd_configs"):
        ctr.run("run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/cfg,options=rbind:ro",
                built["prometheus"].reference, "gx-test-prom-consul", "/bin/prometheus",
                "--config.file=/cfg/prometheus.yml", "--storage.tsdb.path=/tmp/data")


def test_prometheus_image_can_signal_its_pid_1(ctr: Ctr, built: dict[str, BuiltImage]) -> None:
    """The operator's reload is `kill -HUP 1` exec'd in the container: the image must have `kill` on PATH."""
    reference = built["prometheus"].reference
    ctr.run(
        "run",
        "--detach",
        reference,
        "gx-test-prom-kill",
        "/bin/prometheus",
        "--config.file=/dev/null",
        "--storage.tsdb.path=/tmp/data",
    )
    try:
        _wait_running(ctr, "gx-test-prom-kill")
        ctr.run("tasks", "exec", "--exec-id", "hup", "gx-test-prom-kill", "kill", "-HUP", "1")
        time.sleep(1)
        assert "RUNNING" in _task_state(ctr, "gx-test-prom-kill")
    finally:
        _stop(ctr, "gx-test-prom-kill")


def test_chaincode_image_serves_on_its_port(ctr: Ctr, built: dict[str, BuiltImage]) -> None:
    ctr.run(
        "run",
        "--detach",
        "--env",
        "CHAINCODE_ID=gx:0123",
        "--env",
        "CHAINCODE_SERVER_ADDRESS=127.0.0.1:9999",
        built["chaincode"].reference,
        "gx-test-chaincode",
    )
    try:
        _wait_running(ctr, "gx-test-chaincode")
        probe = (
            "import socket, time\n"
            "for _ in range(100):\n"
            "    try:\n"
            "        socket.create_connection(('127.0.0.1', 9999)); break\n"
            "    except OSError:\n"
            "        time.sleep(0.2)\n"
            "else:\n"
            "    raise SystemExit(1)\n"
        )
        ctr.run("tasks", "exec", "--exec-id", "probe", "gx-test-chaincode", "python3.11", "-c", probe)
    finally:
        _stop(ctr, "gx-test-chaincode")


def test_postgresql_image_creates_its_cluster_on_first_start_and_accepts_connections(
    ctr: Ctr, built: dict[str, BuiltImage]
) -> None:
    ctr.run(
        "run",
        "--detach",
        "--env",
        "POSTGRES_PASSWORD=secret",
        "--env",
        "POSTGRES_DB=gx",
        built["postgresql"].reference,
        "gx-test-postgres",
    )
    try:
        _wait_running(ctr, "gx-test-postgres")
        ready = "/usr/lib/postgresql/15/bin/pg_isready"
        deadline = time.monotonic() + 120
        while True:
            try:
                ctr.run(
                    "tasks",
                    "exec",
                    "--exec-id",
                    f"ready{time.monotonic_ns()}",
                    "gx-test-postgres",
                    ready,
                    "-h",
                    "/tmp",
                    "-d",
                    "gx",
                )
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        databases = ctr.run(
            "tasks",
            "exec",
            "--exec-id",
            "psql",
            "gx-test-postgres",
            "/usr/bin/psql",
            "-h",
            "/tmp",
            "-U",
            "postgres",
            "-Atc",
            "select datname from pg_database",
        )
        assert "gx" in databases.split()
    finally:
        _stop(ctr, "gx-test-postgres")


def _task_state(ctr: Ctr, task: str) -> str:
    for line in ctr.run("tasks", "ls").splitlines():
        if line.split()[:1] == [task]:
            return line
    return ""


def _wait_running(ctr: Ctr, task: str) -> None:
    deadline = time.monotonic() + 60
    while "RUNNING" not in _task_state(ctr, task):
        assert time.monotonic() < deadline, f"{task} is not running: {_task_state(ctr, task)!r}"
        time.sleep(0.2)


def _stop(ctr: Ctr, task: str) -> None:
    with contextlib.suppress(AssertionError):
        ctr.run("tasks", "kill", "--signal", "SIGKILL", task)
    deadline = time.monotonic() + 30
    while "RUNNING" in _task_state(ctr, task) and time.monotonic() < deadline:
        time.sleep(0.2)
    ctr.run("tasks", "delete", task)
    ctr.run("containers", "delete", task)
