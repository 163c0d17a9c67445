"""`gx bench gateway`: options are checked before anything connects, and a missing devnet is refused clearly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from gxlib.bench.cli import bench
from gxlib.bench.cpu import cpu_spent, process_cpu_seconds
from gxlib.bench.gateway import DEFAULT_ARGS, BenchNotReadyError, GatewayBenchSpec, check_ready
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import ChaincodeSettings, DevnetSettings
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress


def gx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gxlib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=120)


@pytest.mark.parametrize(("option", "value"), [("--concurrency", "0"), ("--concurrency", "-3"),
                                               ("--concurrency", "many"), ("--seconds", "0"),
                                               ("--seconds", "-1")])
def test_out_of_range_options_are_refused_before_any_connection(option: str, value: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(bench, ["gateway", option, value, "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert option in result.output


def test_bench_on_a_devnet_that_is_not_up_names_it_and_says_to_run_devnet_up(tmp_path: Path) -> None:
    result = gx("bench", "gateway", "--seconds", "1", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"the devnet in {tmp_path} is not up" in result.stderr
    assert "gx devnet up" in result.stderr
    assert result.stdout == ""


def test_state_dir_comes_from_the_environment_when_not_given(tmp_path: Path) -> None:
    result = gx("bench", "gateway", "--seconds", "1", "--json", env={"GX_DEVNET_STATE_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert str(tmp_path) in result.stderr and "gx devnet up" in result.stderr


def test_bench_is_listed_in_gx_help() -> None:
    result = gx("bench", "--help")
    assert result.returncode == 0 and "gateway" in result.stdout


def test_every_submit_gets_its_own_account_and_runs_do_not_share_accounts() -> None:
    first = GatewayBenchSpec(concurrency=4, seconds=1.0)
    second = GatewayBenchSpec(concurrency=4, seconds=1.0)
    accounts = {first.args_for(n)[0] for n in range(100)}
    assert len(accounts) == 100
    assert first.args_for(7)[1:] == DEFAULT_ARGS[1:]
    assert first.args_for(7)[0] != second.args_for(7)[0]


def test_argument_templates_fill_in_run_and_number() -> None:
    spec = GatewayBenchSpec(concurrency=1, seconds=1.0, function="AssetContract:Put", args=("k-{n}", "{run}"),
                            run_tag="abc")
    assert spec.args_for(3) == ("k-3", "abc")


@pytest.mark.parametrize(("concurrency", "seconds"), [(0, 1.0), (1, 0.0), (1, -2.0)])
def test_spec_refuses_nonsense_figures(concurrency: int, seconds: float) -> None:
    with pytest.raises(ValueError, match=r"concurrency|seconds"):
        GatewayBenchSpec(concurrency=concurrency, seconds=seconds)


def test_cpu_seconds_of_this_process_are_read_and_a_gone_process_reads_none() -> None:
    assert (process_cpu_seconds(os.getpid()) or 0.0) > 0.0
    assert process_cpu_seconds(2**22 + 12345) is None
    assert cpu_spent({"a": 1.0, "b": 2.0}, {"a": 1.5}) == {"a": 0.5}


def _devnet_that_reports_healthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Devnet:
    monkeypatch.setattr(Devnet, "status", lambda self: SimpleNamespace(all_healthy=True, nodes=[]))
    return Devnet(DevnetSettings(state_dir=tmp_path), progress=Progress(quiet=True))


def test_chaincode_not_committed_is_refused_with_the_deploy_command(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    devnet = _devnet_that_reports_healthy(tmp_path, monkeypatch)
    monkeypatch.setattr(ChaincodeOperator, "status", lambda self: SimpleNamespace(
        committed=False, answering=False, channel="gxchannel-local", version=None))
    with pytest.raises(BenchNotReadyError, match="gxtv3 is not committed on channel gxchannel-local") as caught:
        check_ready(devnet, ChaincodeSettings())
    assert caught.value.hint == "run `gx chaincode deploy --version 1.0` first"


def test_committed_chaincode_whose_servers_do_not_answer_is_refused(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    devnet = _devnet_that_reports_healthy(tmp_path, monkeypatch)
    monkeypatch.setattr(ChaincodeOperator, "status", lambda self: SimpleNamespace(
        committed=True, answering=False, channel="gxchannel-local", version="1.1"))
    with pytest.raises(BenchNotReadyError, match="servers do not answer") as caught:
        check_ready(devnet, ChaincodeSettings())
    assert caught.value.hint is not None and "gx chaincode deploy --version 1.1" in caught.value.hint
