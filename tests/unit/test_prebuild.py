"""The background build of the Kubernetes binaries and images during a test session (tests/prebuild.py): started
only for sessions with Kubernetes tests, runs both builds in order at nice 19, and is stopped — its whole process
group — when the session ends before it does; a failure is reported with its log's tail."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests import prebuild


def fake_gx(tmp_path: Path, body: str) -> Path:
    gx = tmp_path / "gx"
    gx.write_text(f"#!/bin/sh\necho \"gx $* (nice $(nice))\"\n{body}\n")
    gx.chmod(0o755)
    return gx


def test_only_sessions_with_kubernetes_tests_need_it() -> None:
    assert prebuild.needs_kubernetes(["tests/unit/test_x.py::t", "tests/integration/k8sdeploy/test_a.py::t"])
    assert prebuild.needs_kubernetes(["tests/integration/platform/test_k8s_manifests.py::t"])
    assert not prebuild.needs_kubernetes(["tests/unit/k8simages/test_store.py::t",
                                          "tests/integration/backend/test_reliability.py::t"])


def test_the_kubernetes_tests_go_last_each_part_in_its_order() -> None:
    ids = ["tests/unit/test_a.py::t", "tests/integration/backend/test_b.py::t1",
           "tests/integration/k8scluster/test_c.py::t1", "tests/integration/k8scluster/test_c.py::t2",
           "tests/integration/monitoring/test_d.py::t", "tests/integration/platform/test_e.py::t",
           "tests/integration/runbook/test_f.py::t", "tests/integration/test_devnet.py::t"]
    assert prebuild.kubernetes_last(ids, str) == [
        "tests/unit/test_a.py::t", "tests/integration/backend/test_b.py::t1",
        "tests/integration/monitoring/test_d.py::t", "tests/integration/runbook/test_f.py::t",
        "tests/integration/test_devnet.py::t",
        "tests/integration/k8scluster/test_c.py::t1", "tests/integration/k8scluster/test_c.py::t2",
        "tests/integration/platform/test_e.py::t"]


def test_the_variable_turns_it_off() -> None:
    assert prebuild.enabled({})
    assert prebuild.enabled({"GX_TEST_PREBUILD": "1"})
    assert not prebuild.enabled({"GX_TEST_PREBUILD": "0"})
    assert not prebuild.enabled({"GX_TEST_PREBUILD": "off"})


def test_it_builds_the_binaries_then_the_images_at_nice_19(tmp_path: Path) -> None:
    build = prebuild.BackgroundBuild.start(fake_gx(tmp_path, "true"), log_dir=tmp_path)
    assert build.process.wait(30) == 0
    assert build.log.read_text().splitlines() == ["gx k8s build (nice 19)", "gx k8s images --build (nice 19)"]
    assert build.stop() == f"background build finished (log: {build.log})"


def test_a_failed_binaries_build_stops_there_and_is_reported_with_its_log(tmp_path: Path) -> None:
    build = prebuild.BackgroundBuild.start(fake_gx(tmp_path, 'echo "go: no space left"; exit 3'), log_dir=tmp_path)
    assert build.process.wait(30) == 3
    outcome = build.stop()
    assert outcome.startswith(f"background build failed (exit code 3; log: {build.log}):")
    assert "go: no space left" in outcome
    assert "images" not in build.log.read_text()


def test_an_unfinished_build_is_stopped_with_its_children(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    build = prebuild.BackgroundBuild.start(fake_gx(tmp_path, f"sleep 60 & echo $! > {child_pid}; wait"),
                                           log_dir=tmp_path)
    deadline = time.monotonic() + 30
    while not child_pid.exists() or not child_pid.read_text().strip():
        assert time.monotonic() < deadline, build.log.read_text()
        time.sleep(0.05)
    child = int(child_pid.read_text())
    assert "stopped unfinished" in build.stop()
    assert build.process.poll() is not None
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, f"the build's child {child} still runs"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_a_paused_build_uses_no_cpu_until_resumed(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    build = prebuild.BackgroundBuild.start(
        fake_gx(tmp_path, f"i=0; while true; do i=$((i+1)); echo $i > {counter}; sleep 0.01; done"), log_dir=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not counter.exists() or not counter.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        build.pause()
        time.sleep(0.3)
        paused_at = counter.read_text()
        time.sleep(0.5)
        assert counter.read_text() == paused_at
        build.resume()
        deadline = time.monotonic() + 10
        while counter.read_text() == paused_at:
            assert time.monotonic() < deadline, "the build did not go on after resume"
            time.sleep(0.05)
        build.pause()  # stopping a paused build still ends it
    finally:
        outcome = build.stop()
    assert "stopped unfinished" in outcome
    assert build.process.poll() is not None
