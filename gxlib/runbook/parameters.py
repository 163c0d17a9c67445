"""The parameters of each runbook: one pydantic model per notebook, validated before anything is touched.

A model's fields are exactly the variables of the notebook's ``parameters`` cell (a test holds them equal), so
`gx runbook run -p KEY VALUE`, papermill's ``-p`` and an operator editing the cell in JupyterLab all go through
the same validation. Values may arrive as strings (the command line); the models parse them.

Secret parameters (bearer tokens) are ``SecretStr`` fields that name an environment variable: they are never
written into a notebook. `run()` hands them to the kernel through its environment, and redacts them from the
record; in JupyterLab the operator exports the variable before starting the lab.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from gxlib.config import Environment, environment_profile
from gxlib.runbook.errors import InvalidParameter, MainnetNotConfirmed

PRECISION = 100_000_000  # chaincode units per coin (SPEC §2)
UINT64_MAX = 2**64 - 1

_FABRIC_CHANNEL = re.compile(r"[a-z][a-z0-9.-]{0,248}")
_CHAINCODE_NAME = re.compile(r"[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*")  # Fabric lifecycle's rule for names
_PACKAGE_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # Fabric lifecycle's rule for package labels
_VERSION = re.compile(r"[A-Za-z0-9_.+-]+")
_COUNTRY = re.compile(r"[A-Z]{2}")
_HTTP_URL = re.compile(r"https?://[^\s/]+(/\S*)?")
_USER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")


def secret(env_var: str, description: str) -> Any:
    """A secret parameter: default ``None``, taken from ``env_var`` when not given, never written to a record."""
    return Field(default=None, description=f"{description} (secret; unset: ${env_var})",
                 json_schema_extra={"secret_env": env_var})


def _timeout(default: float, what: str) -> Any:
    return Field(default=default, gt=0, le=24 * 3600, description=f"seconds to wait for {what} before failing")


def _split_list(value: object) -> object:
    # The command line gives "US,CA,GB" or a JSON list; the parameters cell gives a list.
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class RunbookParameters(BaseModel):
    """What every runbook takes (SPEC §8): the environment, dry-run and the mainnet confirmation."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    env: Environment = Field(default=Environment.LOCAL,
                             description="environment profile to act on: local, devnet, testnet or mainnet")
    dry_run: bool = Field(default=False, description="report what would change and change nothing")
    confirm_mainnet: bool = Field(default=False, description="must be true to act on mainnet (refused otherwise)")

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


class BackendParameters(ChannelParameters):
    api_url: str | None = Field(default=None, description="backend HTTP API base URL (default: the profile's)")
    api_token: SecretStr | None = secret("GX_API_TOKEN", "admin bearer token for the backend API")
    submitter_metrics_url: str | None = Field(
        default=None, description="the outbox-submitter's metrics base URL (default: the local backend's, "
                                  "GX_BACKEND_METRICS_HOST / GX_BACKEND_SUBMITTER_METRICS_PORT)")
    devnet_state_dir: Path | None = Field(
        default=None, description="local: the devnet's state directory (default: $GX_DEVNET_STATE_DIR, else "
                                  "~/.local/state/gxlib/devnet); its backend/api-token is the default API token")



def _devnet_state_dir() -> Any:
    return Field(default=None, description="local: the devnet's state directory (default: $GX_DEVNET_STATE_DIR, "
                                           "else ~/.local/state/gxlib/devnet)")


class DeployMonitoringParameters(RunbookParameters):
    """01-deploy-monitoring."""

    prometheus_url: str | None = Field(default=None, description="Prometheus base URL (default: the profile's)")
    monitoring_state_dir: Path | None = Field(
        default=None, description="local: the monitoring stack's state directory, whose config/ Prometheus runs with "
                                  "(default: $GX_MONITORING_STACK_STATE_DIR, else ~/.local/state/gxlib/monitoring)")
    devnet_state_dir: Path | None = _devnet_state_dir()
    reload: bool = Field(default=True, description="reload Prometheus after the configuration changed")
    targets_timeout_s: float = _timeout(180.0, "the three gx-* jobs' targets to be up")
    rules_timeout_s: float = _timeout(60.0, "the 18 alert rules to be loaded")


class UpgradeChaincodeParameters(ChannelParameters):
    """02-upgrade-chaincode."""

    chaincode_name: str = Field(default="gxtv3", description="chaincode name on the channel")
    chaincode_version: str = Field(default="1.1", description="version of the new definition, e.g. 1.1")
    chaincode_label: str | None = Field(default=None,
                                        description="package label (default: <chaincode_name>_<chaincode_version>)")
    commit_timeout_s: float = _timeout(120.0, "the new definition to be committed on every peer")
    restart_timeout_s: float = _timeout(120.0, "the chaincode servers to answer with the new package")
    devnet_state_dir: Path | None = _devnet_state_dir()

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


class BootstrapSystemParameters(BackendParameters):
    """03-bootstrap-system."""

    commit_timeout_s: float = _timeout(60.0, "the BOOTSTRAP_SYSTEM command to be committed in a block")
    projection_timeout_s: float = _timeout(30.0, "the four pool mints to reach the read model")


class ValidateCqrsParameters(BackendParameters):
    """04-validate-cqrs."""

    countries: list[str] = Field(default_factory=lambda: ["US", "CA", "GB"],
                                 description="countries to initialise (ISO 3166-1 alpha-2 codes)")
    test_user_id: str = Field(default="gx-runbook-test-user", description="user the runbook creates and checks")
    test_user_country: str = Field(default="US", description="the test user's country; one of `countries`")
    mint_amount: int = Field(default=100 * PRECISION, gt=0, le=UINT64_MAX,
                             description="amount minted to the test user, in units (1 coin is 100,000,000 units)")
    commit_timeout_s: float = _timeout(60.0, "each command to be committed in a block")
    projection_timeout_s: float = _timeout(30.0, "each event to reach the read model")
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
            raise ValueError(f"{value!r} is not a valid user ID: up to 128 letters, digits and '_.@-'")
        return value

    @field_validator("test_user_country")
    @classmethod
    def _country_is_initialised(cls, value: str, info: ValidationInfo) -> str:
        countries = info.data.get("countries")
        if countries is not None and value not in countries:
            raise ValueError(f"{value!r} is not one of the countries the runbook initialises {countries}")
        return value


class ValidateMonitoringParameters(BackendParameters):
    """05-validate-monitoring."""

    prometheus_url: str | None = Field(default=None, description="Prometheus base URL (default: the profile's)")
    alertmanager_url: str | None = Field(default=None, description="Alertmanager base URL (default: the profile's)")
    lag_window_minutes: int = Field(default=30, gt=0, le=7 * 24 * 60,
                                    description="how far back the projection-lag chart reaches")
    monitoring_state_dir: Path | None = Field(
        default=None, description="local: the monitoring stack's state directory, for its URLs and the webhook's "
                                  "record (default: $GX_MONITORING_STACK_STATE_DIR, else "
                                  "~/.local/state/gxlib/monitoring)")
    breaker_drill: bool = Field(default=True, description="run the circuit-breaker drill (gateway made unreachable; "
                                                          "takes a few minutes)")
    breaker_open_timeout_s: float = _timeout(120.0, "the circuit breaker to open once the gateway is unreachable")
    alert_firing_timeout_s: float = _timeout(240.0, "FabricCircuitBreakerOpen to fire (its rule has `for: 1m`) "
                                                    "and reach Alertmanager")
    recovery_timeout_s: float = _timeout(300.0, "the breaker to close, the drill's command to commit and the "
                                                "alert to resolve after the gateway is back")
    report_path: Path | None = Field(default=None,
                                     description="where the SLO report (HTML) goes (default: in the run's record)")


def parameter_error(runbook: str, error: ValidationError, model: type[RunbookParameters]) -> InvalidParameter:
    """The operator's message for a pydantic error: the parameter's name and why, every problem listed."""
    problems: list[tuple[str, str]] = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]) or "parameters"
        if item["type"] == "extra_forbidden":
            reason = f"unknown parameter; {runbook} takes: {', '.join(model.model_fields)}"
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
