"""`gx bench pipeline --profile`: py-spy's collapsed stacks summed by own CPU, and a real attach to a busy
process names the function that burns it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gxlib.bench.cli import bench
from gxlib.bench.profile import ProfileEntry, ProfilerError, ServiceProfiler, frame_name, top_own

COLLAPSED = textwrap.dedent("""\
    <module> (gxlib/cli.py:3);run (uvicorn/server.py:60);handle (gxlib/backend/api.py:10);dumps (json/__init__.py:231) 6
    <module> (gxlib/cli.py:3);run (uvicorn/server.py:60);handle (gxlib/backend/api.py:12) 3
    <module> (gxlib/cli.py:3);run (uvicorn/server.py:60);dumps (json/__init__.py:240) 1
    process 42:"python -m gxlib.cli serve api";loop (/x/.venv/lib/python3.11/site-packages/anyio/_core.py:7) 10
    not a stack line
    """)


def test_own_cpu_is_the_innermost_frame_and_a_functions_lines_add_up() -> None:
    total, top = top_own(COLLAPSED, count=3)
    assert total == 20
    assert top == [ProfileEntry("loop (anyio/_core.py)", 10, 0.5),
                   ProfileEntry("dumps (json/__init__.py)", 7, 0.35),
                   ProfileEntry("handle (gxlib/backend/api.py)", 3, 0.15)]


def test_frames_lose_their_line_and_installation_prefix_but_odd_frames_stay_whole() -> None:
    assert frame_name("get (/v/lib/python3.11/site-packages/httpx/_api.py:195)") == "get (httpx/_api.py)"
    assert frame_name("<module> (gxlib/cli.py)") == "<module> (gxlib/cli.py)"
    assert frame_name('process 7:"python x.py"') == 'process 7:"python x.py"'


def test_an_empty_profile_has_no_entries() -> None:
    assert top_own("") == (0, [])


def test_attached_to_a_busy_process_the_busy_function_leads_the_profile(tmp_path: Path) -> None:
    busy = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""\
        import sys
        def spin():
            n = 0
            while True:
                n += 1
        print("ready", flush=True)
        spin()
        """)], stdout=subprocess.PIPE)
    try:
        assert busy.stdout is not None and busy.stdout.readline() == b"ready\n"
        with ServiceProfiler({"busy": busy.pid}, tmp_path, rate=200) as profiler:
            time.sleep(1)  # let it take samples (no figure depends on how many)
            busy_before = busy.poll()
        assert busy_before is None
        (profile,) = profiler.results()
    finally:
        busy.kill()
        busy.wait()
    assert profile.service == "busy" and profile.pid == busy.pid
    assert Path(profile.raw_file).is_file()
    if profile.samples == 0:
        pytest.fail(f"py-spy recorded no samples: {Path(profile.raw_file).read_text()!r}")
    assert profile.top[0].function.startswith("spin ")


def test_a_process_py_spy_cannot_attach_to_is_named_before_the_run_starts(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(ProfilerError, match=rf"could not attach to api \(pid {gone.pid}\)"), \
            ServiceProfiler({"api": gone.pid}, tmp_path):
        pytest.fail("the block must not run")


def test_profile_option_without_py_spy_is_refused_with_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    monkeypatch.setattr("gxlib.bench.profile.shutil.which", lambda *_a, **_k: None)
    result = CliRunner().invoke(bench, ["pipeline", "--profile", str(tmp_path / "p"), "--state-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ProfilerError) and "py-spy is not installed" in str(result.exception)
    assert not (tmp_path / "p").exists()
