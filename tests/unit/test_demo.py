"""What `gx demo` hands the runbooks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gxlib.demo import RUNBOOKS, _runbook_parameters


def _fakes(tmp_path: Path) -> tuple[Any, Any, Any]:
    devnet = SimpleNamespace(layout=SimpleNamespace(root=tmp_path / "devnet"))
    backend = SimpleNamespace(services=[SimpleNamespace(url="http://127.0.0.1:8080"),
                                        SimpleNamespace(url="http://127.0.0.1:9101"),
                                        SimpleNamespace(url="http://127.0.0.1:9102")])
    stack = SimpleNamespace(prometheus_url="http://127.0.0.1:9090", alertmanager_url="http://127.0.0.1:9093",
                            config=SimpleNamespace(stack_state_dir=tmp_path / "monitoring"))
    return devnet, backend, stack


def test_demo_gives_the_runbooks_the_submitters_base_url_so_its_metrics_are_not_at_metrics_metrics(
        tmp_path: Path) -> None:
    from gxlib.runbook.steps_backend import SubmitterProbe

    for name in RUNBOOKS[2:]:
        parameters = _runbook_parameters(name, *_fakes(tmp_path), drill=False)
        probe = SubmitterProbe(metrics_url=parameters["submitter_metrics_url"])
        assert probe.where == "http://127.0.0.1:9101/metrics answers"
