"""The runbooks gxlib knows: name, what each does, its notebook and its parameter model (SPEC §8)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gxlib.runbook.errors import UnknownRunbook
from gxlib.runbook.parameters import (
    BootstrapSystemParameters,
    DeployMonitoringParameters,
    RunbookParameters,
    UpgradeChaincodeParameters,
    ValidateCqrsParameters,
    ValidateMonitoringParameters,
)


@dataclass(frozen=True)
class RunbookSpec:
    name: str
    title: str
    description: str
    parameters: type[RunbookParameters]

    @property
    def notebook(self) -> str:
        """The notebook's file name inside the notebooks directory."""
        return f"{self.name}.ipynb"

    def defaults(self) -> dict[str, Any]:
        """Each parameter's default, as the JSON-able value the ``parameters`` cell holds."""
        return self.parameters().model_dump(mode="json")

    def describe_parameters(self) -> list[tuple[str, Any, str]]:
        """(name, default, description) for every parameter, in declaration order."""
        defaults = self.defaults()
        return [(name, defaults[name], field.description or "")
                for name, field in self.parameters.model_fields.items()]


RUNBOOKS: tuple[RunbookSpec, ...] = (
    RunbookSpec("01-deploy-monitoring", "Deploy monitoring",
                "Render scrape jobs, the 18 alert rules and the dashboard from code, show the diff against what "
                "is deployed, apply and reload Prometheus, verify targets up, rules loaded, queries answering.",
                DeployMonitoringParameters),
    RunbookSpec("02-upgrade-chaincode", "Upgrade chaincode",
                "Build and install the new chaincode package on every peer, approve for every org with sequence "
                "+ 1, commit, restart the chaincode servers and verify the new version answers.",
                UpgradeChaincodeParameters),
    RunbookSpec("03-bootstrap-system", "Bootstrap system",
                "Pre-check chaincode, submitter and breaker; submit BOOTSTRAP_SYSTEM through the API, follow it to "
                "its block, verify the four pools on the ledger and in the read model. Once only.",
                BootstrapSystemParameters),
    RunbookSpec("04-validate-cqrs", "Validate CQRS",
                "Initialise countries, create a test user, distribute genesis; follow each command API → outbox "
                "→ block → projection and report per-stage timings against the SLOs.",
                ValidateCqrsParameters),
    RunbookSpec("05-validate-monitoring", "Validate monitoring / SLO report",
                "The four SLO gauges, projection lag over time, a circuit-breaker drill through to Alertmanager, "
                "the state of every alert rule, and an SLO report saved as self-contained HTML.",
                ValidateMonitoringParameters),
)


def runbooks() -> Iterator[RunbookSpec]:
    return iter(RUNBOOKS)


def runbook(name: str | RunbookSpec) -> RunbookSpec:
    """The runbook called ``name`` (``04-validate-cqrs``; the ``.ipynb`` suffix is accepted).

    A ``RunbookSpec`` is returned as it is: a runbook outside the registry (a test's toy runbook) runs the same way.
    """
    if isinstance(name, RunbookSpec):
        return name
    wanted = name.removesuffix(".ipynb")
    for spec in RUNBOOKS:
        if spec.name == wanted:
            return spec
    raise UnknownRunbook(name, [spec.name for spec in RUNBOOKS])
