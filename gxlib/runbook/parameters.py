"""The parameters of each runbook: one pydantic model per notebook, validated before anything is touched.

A model's fields are exactly the variables of the notebook's ``parameters`` cell (a test holds them equal), so
`gx runbook run -p KEY VALUE`, papermill's ``-p`` and an operator editing the cell in JupyterLab all go through
the same validation. Values may arrive as strings (the command line); the models parse them.

Secret parameters (bearer tokens) are ``SecretStr`` fields that name an environment variable: they are never
written into a notebook. `run()` hands them to the kernel through its environment, and redacts them from the
record; in JupyterLab the operator exports the variable before starting the lab.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator

from gxlib.backend.ids import LEDGER_ID_PATTERN
from gxlib.config import Environment, environment_profile
from gxlib.platform.base import ReloadMethod
from gxlib.platform.chaincode_image import AUTO, parse_choice
from gxlib.runbook import path_checks
from gxlib.runbook.errors import InvalidParameter, MainnetNotConfirmed
from gxlib.runbook.fields import (
    NETWORK_FILE_NEEDED,
    AlertmanagerEndpoint,
    BackendApi,
    BackendFabricNetworkFile,
    DevnetStateDir,
    EnvironmentFields,
    FabricNetworkFile,
    KubernetesAccess,
    MonitoringStateDir,
    PrometheusEndpoint,
    secret,
    timeout,
)
from gxlib.runbook.settings import RunbookSettings

__all__ = ["NETWORK_FILE_NEEDED", "PRECISION", "UINT64_MAX", "BackendParameters", "BootstrapSystemParameters",
           "ChannelParameters", "CommandParameters", "DeployMonitoringParameters", "RunbookParameters",
           "UpgradeChaincodeParameters", "ValidateCqrsParameters", "ValidateMonitoringParameters", "parameter_error",
           "secret", "validate_parameters"]

PRECISION = 100_000_000  # chaincode units per coin (SPEC §2)
UINT64_MAX = 2**64 - 1

_FABRIC_CHANNEL = re.compile(r"[a-z][a-z0-9.-]{0,248}")
_CHAINCODE_NAME = re.compile(r"[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*")  # Fabric lifecycle's rule for names
_PACKAGE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # Fabric lifecycle's rule for package labels
_VERSION = re.compile(r"[A-Za-z0-9_.+-]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_HTTP_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
_USER_ID = re.compile(LEDGER_ID_PATTERN)  # a ledger ID (SPEC §9), as the API and the chaincode take it
_ORG_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_HOST_PORT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*:[0-9]{1,5}")


def _split_list(value: object) -> object:
    # The command line gives "US,CA,GB" or a JSON list; the parameters cell gives a list.
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class RunbookParameters(EnvironmentFields):
    """What every runbook takes (SPEC §8): the environment, dry-run and the mainnet confirmation (the fields of
    ``EnvironmentFields``); every ``*_url`` checked to be http(s), secrets kept out of records."""

    @field_validator("*")
    @classmethod
    def _urls_are_http(cls, value: object, info: ValidationInfo) -> object:
        # Every ``*_url`` parameter is an endpoint the runbook will call: refuse anything but http(s) up front.
        is_url = bool(info.field_name and info.field_name.endswith("_url"))
        if is_url and value is not None and not (isinstance(value, str) and _HTTP_URL.fullmatch(value)):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @classmethod
    def secret_fields(cls) -> dict[str, str]:
        """Secret parameter name → the environment variable it is read from."""
        found: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            extra = field.json_schema_extra
            if isinstance(extra, dict) and isinstance(extra.get("secret_env"), str):
                found[name] = str(extra["secret_env"])
        return found

    def secret_values(self) -> list[str]:
        """The values of the secret parameters that are set (what a record must never contain)."""
        values = []
        for name in self.secret_fields():
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        return values

    def public_values(self) -> dict[str, Any]:
        """Every parameter as JSON-able values, secrets shown as ``***`` (set) or ``None``."""
        values = self.model_dump(mode="json")
        for name in self.secret_fields():
            values[name] = "***" if getattr(self, name) is not None else None
        return values

    def notebook_values(self) -> dict[str, Any]:
        """What is injected into the notebook: every parameter except the secrets."""
        values = self.model_dump(mode="json")
        for name in self.secret_fields():
            values.pop(name)
        return values


class ChannelParameters(RunbookParameters):
    channel: str | None = Field(default=None, description="Fabric channel (default: the profile's, gxchannel-<env>)")

    @field_validator("channel")
    @classmethod
    def _channel_is_valid_for_fabric(cls, value: str | None) -> str | None:
        if value is not None and not _FABRIC_CHANNEL.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid Fabric channel name: use lower-case letters, digits, '.' "
                             "and '-', starting with a letter")
        return value

    def channel_name(self) -> str:
        """The channel to act on: the parameter, or the environment profile's channel."""
        return self.channel or environment_profile(self.env).channel


# The groups of a model are listed in reverse of the order of their fields (see gxlib.runbook.fields).

class BackendParameters(DevnetStateDir, BackendApi, ChannelParameters):
    """What runbooks 03–05 reach the backend by: its API, the admin token, the submitter's metrics, the devnet."""


class DeployMonitoringParameters(KubernetesAccess, DevnetStateDir, MonitoringStateDir, PrometheusEndpoint,
                                 RunbookParameters):
    """01-deploy-monitoring."""

    reload: bool = Field(default=True, description="reload Prometheus after the configuration changed")
    reload_method: ReloadMethod = Field(
        default=ReloadMethod.HTTP, description="Kubernetes: how Prometheus is reloaded — http (POST /-/reload "
                                               "through the pod proxy) or signal (`kill -HUP 1` in prometheus-0)")
    targets_timeout_s: float = timeout(180.0, "the three gx-* jobs' targets to be up")
    rules_timeout_s: float = timeout(180.0, "the 18 alert rules to be loaded (Kubernetes: the kubelet takes up "
                                            "to about two minutes to bring a changed ConfigMap into the pod)")

    @field_validator("reload_method")
    @classmethod
    def _signal_is_for_kubernetes(cls, value: ReloadMethod, info: ValidationInfo) -> ReloadMethod:
        if value is ReloadMethod.SIGNAL and info.data.get("env") is Environment.LOCAL:
            raise ValueError("signal reloads prometheus-0 on Kubernetes; env=local reloads the local Prometheus "
                             "through its lifecycle endpoint (http)")
        return value


class UpgradeChaincodeParameters(KubernetesAccess, FabricNetworkFile, DevnetStateDir, ChannelParameters):
    """02-upgrade-chaincode."""

    chaincode_name: str = Field(default="gxtv3", description="chaincode name on the channel")
    chaincode_version: str = Field(default="1.1", description="version of the new definition, e.g. 1.1")
    chaincode_label: str | None = Field(default=None,
                                        description="package label (default: <chaincode_name>_<chaincode_version>)")
    commit_timeout_s: float = timeout(120.0, "the new definition to be committed on every peer")
    restart_timeout_s: float = timeout(120.0, "the chaincode servers to answer with the new package")
    chaincode_addresses: dict[str, str] = Field(
        default_factory=dict, description="devnet/testnet/mainnet: org → host:port its package points the org's "
                                          "peer at (default: the org's chaincode Service, "
                                          "<deployment>.<namespace>:<port>)")
    chaincode_image: str = Field(
        default="auto", description="devnet/testnet/mainnet: the image the chaincode Deployments roll to — build "
                                    "(from chaincode/Dockerfile, imported into the node `gx k8s up` runs here), keep "
                                    "(theirs), an image reference, or auto (build on this machine's node, else keep)")

    @field_validator("chaincode_image")
    @classmethod
    def _image_is_a_choice(cls, value: str, info: ValidationInfo) -> str:
        value = parse_choice(value.strip())
        if info.data.get("env") is Environment.LOCAL and value != AUTO:
            raise ValueError("env=local runs the chaincode servers as processes, with no image: leave it auto")
        return value

    @field_validator("chaincode_addresses", mode="before")
    @classmethod
    def _parse_addresses(cls, value: object) -> object:
        # The command line gives a JSON object; the parameters cell gives a dict.
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("chaincode_addresses")
    @classmethod
    def _addresses_are_host_port(cls, value: dict[str, str]) -> dict[str, str]:
        for org, address in value.items():
            if not _ORG_KEY.fullmatch(org):
                raise ValueError(f"{org!r} is not an org key (like org1)")
            if not _HOST_PORT.fullmatch(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
                raise ValueError(f"{address!r} (for {org}) is not host:port")
        return value

    @field_validator("chaincode_name")
    @classmethod
    def _name_is_valid(cls, value: str) -> str:
        if not _CHAINCODE_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid chaincode name: letters and digits, joined by '-' or '_'")
        return value

    @field_validator("chaincode_version")
    @classmethod
    def _version_is_valid(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid version: letters, digits and '_.+-' only")
        return value

    @field_validator("chaincode_label")
    @classmethod
    def _label_is_valid(cls, value: str | None) -> str | None:
        if value is not None and not _PACKAGE_LABEL.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid package label: start with a letter or digit, then "
                             "letters, digits and '_.+-'")
        return value

    def package_label(self) -> str:
        return self.chaincode_label or f"{self.chaincode_name}_{self.chaincode_version}"


class CommandParameters(KubernetesAccess, PrometheusEndpoint, BackendFabricNetworkFile, BackendParameters):
    """Runbooks 03/04, which post commands and read the ledger. Off local there is no devnet to find the backend
    and the ledger by: what the parameters do not give (the API, its token, the Fabric network's document) is
    found in the env's cluster (kubeconfig / kube_context) through the platform, and the run stops naming the
    parameter when the cluster has it neither."""


class BootstrapSystemParameters(CommandParameters):
    """03-bootstrap-system."""

    commit_timeout_s: float = timeout(60.0, "the BOOTSTRAP_SYSTEM command to be committed in a block")
    projection_timeout_s: float = timeout(30.0, "the four pool mints to reach the read model")


class ValidateCqrsParameters(CommandParameters):
    """04-validate-cqrs."""

    countries: list[str] = Field(default_factory=lambda: ["US", "CA", "GB"],
                                 description="countries to initialise (ISO 3166-1 alpha-2 codes)")
    test_user_id: str = Field(default="gx-runbook-test-user", description="user the runbook creates and checks")
    test_user_country: str = Field(default="US", description="the test user's country; one of `countries`")
    mint_amount: int = Field(default=100 * PRECISION, gt=0, le=UINT64_MAX,
                             description="amount minted to the test user, in units (1 coin is 100,000,000 units)")
    commit_timeout_s: float = timeout(60.0, "each command to be committed in a block")
    projection_timeout_s: float = timeout(30.0, "each event to reach the read model")
    projection_slo_ms: float = Field(default=5000.0, gt=0,
                                     description="SLO: commit → read model, per command (milliseconds)")

    @field_validator("countries", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("countries")
    @classmethod
    def _countries_are_codes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one country is needed")
        bad = [c for c in value if not _COUNTRY.fullmatch(c)]
        if bad:
            raise ValueError(f"{bad} are not ISO 3166-1 alpha-2 codes (two upper-case letters, e.g. US)")
        if len(set(value)) != len(value):
            raise ValueError(f"{value} lists a country twice")
        return value

    @field_validator("test_user_id")
    @classmethod
    def _user_id_is_valid(cls, value: str) -> str:
        if not _USER_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid user ID: 1 to 128 ASCII letters, digits and '_ - . :' "
                             "(SPEC §9)")
        return value

    @field_validator("test_user_country")
    @classmethod
    def _country_is_initialised(cls, value: str, info: ValidationInfo) -> str:
        countries = info.data.get("countries")
        if countries is not None and value not in countries:
            raise ValueError(f"{value!r} is not one of the countries the runbook initialises {countries}")
        return value


class ValidateMonitoringParameters(MonitoringStateDir, KubernetesAccess, AlertmanagerEndpoint, PrometheusEndpoint,
                                   BackendParameters):
    """05-validate-monitoring."""

    lag_window_minutes: int = Field(default=30, gt=0, le=7 * 24 * 60,
                                    description="how far back the projection-lag chart reaches")
    breaker_drill: bool | None = Field(
        default=None, description="run the circuit-breaker drill (gateway made unreachable; takes a few minutes); "
                                  "local, and devnet, whose Gateway peer is a process of this machine's devnet too "
                                  "(default: true on local, false elsewhere)")
    breaker_open_timeout_s: float = timeout(120.0, "the circuit breaker to open once the gateway is unreachable")
    alert_firing_timeout_s: float = timeout(240.0, "FabricCircuitBreakerOpen to fire (its rule has `for: 1m`) "
                                                    "and reach Alertmanager")
    recovery_timeout_s: float = timeout(300.0, "the breaker to close, the drill's command to commit and the "
                                                "alert to resolve after the gateway is back")
    report_path: Path | None = Field(default=None,
                                     description="where the SLO report (HTML) goes (default: in the run's record)")

    @field_validator("report_path")
    @classmethod
    def _report_path_is_an_html_file_to_write(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        return path_checks.report_file(value, notebooks_dir=RunbookSettings().notebooks_dir)

    @field_validator("breaker_drill")
    @classmethod
    def _drill_is_where_the_peers_are_ours(cls, value: bool | None, info: ValidationInfo) -> bool:
        env = info.data.get("env")
        local = env in (None, Environment.LOCAL)  # None: env itself was refused, with its own message
        if value is None:
            return local
        if value and not local and env is not Environment.DEVNET:
            assert isinstance(env, Environment)
            raise ValueError(f"the drill stops the submitter's Gateway peer process, which only env=local and "
                             f"env=devnet (whose peers are this machine's devnet) can do; on {env.value} the peers "
                             "are not this runbook's to stop — set breaker_drill false")
        return value


def parameter_error(runbook: str, error: ValidationError, model: type[RunbookParameters]) -> InvalidParameter:
    """The operator's message for a pydantic error: the parameter's name and why, every problem listed."""
    problems: list[tuple[str, str]] = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "parameters"
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, list(model.model_fields), n=1)
            reason = (f"unknown parameter{f' (did you mean {close[0]!r}?)' if close else ''}; "
                      f"{runbook} takes: {', '.join(model.model_fields)}")
        else:
            reason = str(item["msg"]).removeprefix("Value error, ")
        problems.append((name, reason))
    name, reason = problems[0]
    for other, why in problems[1:]:
        reason += f"; also {other!r}: {why}"
    return InvalidParameter(runbook, name, reason)


def validate_parameters(runbook: str, model: type[RunbookParameters], raw: Mapping[str, object], *,
                        environ: Mapping[str, str] | None = None) -> RunbookParameters:
    """Validate ``raw`` against ``model``: secrets filled from the environment, mainnet refused unless confirmed.

    Raises ``InvalidParameter`` (naming the parameter and why) or ``MainnetNotConfirmed``.
    """
    environ = os.environ if environ is None else environ
    values = dict(raw)
    for name, variable in model.secret_fields().items():
        if values.get(name) in (None, "") and environ.get(variable):
            values[name] = environ[variable]
    try:
        params = model.model_validate(values)
    except ValidationError as exc:
        raise parameter_error(runbook, exc, model) from None
    if params.env is Environment.MAINNET and not params.confirm_mainnet:
        raise MainnetNotConfirmed(runbook)
    return params
