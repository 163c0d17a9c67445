"""`make demo` / `gx demo`: the main job — bring up the local devnet, the GX chaincode, the backend and the
monitoring stack, then run the five runbooks in order and end with the SLO report's path and a summary.

Every step is idempotent, so a second demo reuses what runs and the runbooks report "already done".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gxlib.backend.local import LocalBackend
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import DevnetSettings
from gxlib.devnet.network import Devnet
from gxlib.monitoring.settings import MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.progress import Progress

FIRST_CHAINCODE_VERSION = "1.0"
RUNBOOKS = ("01-deploy-monitoring", "02-upgrade-chaincode", "03-bootstrap-system", "04-validate-cqrs",
            "05-validate-monitoring")
# The circuit-breaker drill of runbook 05 takes minutes (its alert needs `for: 1m`); the demo runs it on the
# first demo of a state directory and skips it afterwards, so a warm demo stays short.
DRILL_DONE_MARKER = "demo-drill-done"


@dataclass
class RunbookOutcome:
    name: str
    passed: bool
    record: str | None
    seconds: float
    error: str | None = None


@dataclass
class DemoReport:
    runbooks: list[RunbookOutcome] = field(default_factory=list)
    report_path: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.runbooks)


def _runbook_parameters(name: str, devnet: Devnet, backend: LocalBackend, stack: LocalMonitoringStack,
                        drill: bool) -> dict[str, Any]:
    common: dict[str, Any] = {"devnet_state_dir": str(devnet.layout.root)}
    # Both are base URLs: the runbooks add the paths (/metrics, /v1/...) themselves.
    backend_urls = {"api_url": backend.services[0].url, "submitter_metrics_url": backend.services[1].url}
    if name == "01-deploy-monitoring":
        return {**common, "prometheus_url": stack.prometheus_url,
                "monitoring_state_dir": str(stack.config.stack_state_dir)}
    if name == "02-upgrade-chaincode":
        return common
    if name in ("03-bootstrap-system", "04-validate-cqrs"):
        return {**common, **backend_urls}
    return {**common, **backend_urls, "prometheus_url": stack.prometheus_url,
            "alertmanager_url": stack.alertmanager_url, "monitoring_state_dir": str(stack.config.stack_state_dir),
            "breaker_drill": drill}


def accepted_parameters(name: str, candidates: dict[str, Any]) -> dict[str, Any]:
    """The candidates that runbook ``name``'s parameter model has fields for."""
    from gxlib.runbook.registry import runbook

    fields = runbook(name).parameters.model_fields
    return {key: value for key, value in candidates.items() if key in fields}


def run_demo(progress: Progress | None = None) -> DemoReport:
    """Bring everything up and run the five runbooks; never raises for a failing runbook (it is reported)."""
    progress = progress or Progress()
    started = time.monotonic()
    devnet = Devnet(DevnetSettings(), progress=progress)
    progress.info("[bold]1/5[/] the local Fabric network")
    devnet.up()
    progress.info("[bold]2/5[/] the GX chaincode")
    operator = ChaincodeOperator(devnet, progress=progress)
    if not operator.status().committed:
        operator.deploy(FIRST_CHAINCODE_VERSION)
    else:
        progress.info("  gxtv3 is committed; runbook 02 takes care of upgrades")
    progress.info("[bold]3/5[/] the CQRS backend (api, submitter, projector)")
    backend = LocalBackend(devnet, progress=progress)
    backend.up()
    progress.info("[bold]4/5[/] the monitoring stack (Prometheus, Alertmanager, webhook receiver)")
    stack = LocalMonitoringStack(MonitoringConfig(), devnet.settings, progress)
    stack.up()
    progress.info("[bold]5/5[/] the runbooks")
    # The runbooks' kernels get the admin token through their environment; this process's stays as it was.
    environ = {**os.environ, "GX_API_TOKEN": next(iter(backend.api_tokens()))}
    report = run_runbooks(lambda name, drill: _runbook_parameters(name, devnet, backend, stack, drill), environ,
                          devnet.layout.root / DRILL_DONE_MARKER, progress)
    report.seconds = time.monotonic() - started
    return report


def run_runbooks(parameters_of: Callable[[str, bool], dict[str, Any]], environ: Mapping[str, str], marker: Path,
                 progress: Progress, kernel_environ: Mapping[str, str] | None = None) -> DemoReport:
    """The five runbooks in order through papermill, each with the parameters ``parameters_of(name, drill)``
    gives (those its model accepts; secrets read from ``environ``; ``kernel_environ`` added to the kernels'
    environment); runbook 05's drill only while ``marker`` does not exist, which a passed 05 writes. A failing
    runbook is reported and the rest still run."""
    from gxlib.runbook.execute import run as run_runbook

    drill = not marker.exists()
    report = DemoReport()
    started = time.monotonic()
    for name in RUNBOOKS:
        parameters = accepted_parameters(name, parameters_of(name, drill))
        begun = time.monotonic()
        try:
            record = run_runbook(name, parameters, progress=progress, environ=dict(environ),
                                 kernel_environ=kernel_environ)
            report.runbooks.append(RunbookOutcome(name, record.passed, str(record.record_dir),
                                                  time.monotonic() - begun))
        except Exception as exc:  # a failed runbook is reported, and the demo goes on to show the rest
            record_dir = getattr(exc, "record_dir", None)
            report.runbooks.append(RunbookOutcome(name, False, str(record_dir) if record_dir else None,
                                                  time.monotonic() - begun, str(exc).splitlines()[0]))
    validated = next((r for r in report.runbooks if r.name == RUNBOOKS[-1]), None)
    if drill and validated is not None and validated.passed:  # the drill is runbook 05's; other runbooks aside
        marker.write_text("the circuit-breaker drill passed; later demos skip it\n")
    for outcome in report.runbooks:
        if outcome.record and outcome.name == RUNBOOKS[-1]:
            reports = sorted(Path(outcome.record).rglob("*slo*.html"))
            report.report_path = str(reports[-1]) if reports else None
    report.seconds = time.monotonic() - started
    return report
