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

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from gxlib.config import Environment, environment_profile
from gxlib.platform.base import ReloadMethod
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
_ORG_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_HOST_PORT = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*:[0-9]{1,5}")
NETWORK_FILE_NEEDED = ("the path of the {env} Fabric network's environment document (JSON shaped like "
                       "`gx devnet env --json`)")


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
    api_url: str | None = Field(default=None, description="backend HTTP API base URL (local default: the backend's "
                                                          "GX_BACKEND_API_HOST / GX_BACKEND_API_PORT)")
    api_token: SecretStr | None = secret("GX_API_TOKEN", "admin bearer token for the backend API")
    submitter_metrics_url: str | None = Field(
        default=None, description="the outbox-submitter's metrics base URL (local default: the local backend's, "
                                  "GX_BACKEND_METRICS_HOST / GX_BACKEND_SUBMITTER_METRICS_PORT; Kubernetes: "
                                  "optional, e.g. a `kubectl port-forward` of the submitter)")
    devnet_state_dir: Path | None = Field(
        default=None, description="local: the devnet's state directory (default: $GX_DEVNET_STATE_DIR, else "
                                  "~/.local/state/gxlib/devnet); its backend/api-token is the default API token")



def _devnet_state_dir() -> Any:
    return Field(default=None, description="local: the devnet's state directory (default: $GX_DEVNET_STATE_DIR, "
                                           "else ~/.local/state/gxlib/devnet)")


def _kubeconfig_contexts(path: Path) -> list[str]:
    """The context names of the kubeconfig at ``path`` (ValueError when it is not one)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path} cannot be read as a kubeconfig: {exc}") from None
    contexts = document.get("contexts") if isinstance(document, dict) else None
    if not isinstance(contexts, list):
        raise ValueError(f"{path} is not a kubeconfig (it has no contexts)")
    return [str(entry.get("name")) for entry in contexts if isinstance(entry, dict)]


def _kubernetes_only(name: str, info: ValidationInfo) -> None:
    # On env=local a kubeconfig would be ignored; refusing it catches a forgotten `env`.
    if info.data.get("env") is Environment.LOCAL:
        raise ValueError(f"{name} is for devnet/testnet/mainnet (Kubernetes); env=local acts on this machine — "
                         f"set env, or leave {name} unset")


def _kubeconfig() -> Any:
    return Field(default=None, description="Kubernetes: the kubeconfig file (default: $GX_K8S_PLATFORM_KUBECONFIG, "
                                           "else $KUBECONFIG, else ~/.kube/config; in a pod, its service account)")


def _kube_context() -> Any:
    return Field(default=None, description="Kubernetes: the kubeconfig context (default: $GX_K8S_PLATFORM_CONTEXT, "
                                           "else the kubeconfig's current context)")


def _fabric_network_file(identities: str) -> Any:
    return Field(default=None, description="devnet/testnet/mainnet (required there): the environment document of the "
                                           "env's Fabric network, JSON shaped like `gx devnet env --json` (peers, "
                                           f"orderer, org MSPs, {identities})")


def _kubeconfig_file(value: Path | None, info: ValidationInfo) -> Path | None:
    """A kubeconfig parameter: only off local, an existing file with contexts."""
    if value is None:
        return None
    _kubernetes_only("kubeconfig", info)
    value = value.expanduser()
    if not value.is_file():
        raise ValueError(f"{value} is not a file")
    _kubeconfig_contexts(value)
    return value


def _context_of_kubeconfig(value: str | None, info: ValidationInfo) -> str | None:
    """A kube_context parameter: only off local, non-empty, one of the given kubeconfig's contexts."""
    if value is None:
        return None
    _kubernetes_only("kube_context", info)
    if not value.strip():
        raise ValueError("a context name cannot be empty")
    kubeconfig = info.data.get("kubeconfig")
    if isinstance(kubeconfig, Path):
        contexts = _kubeconfig_contexts(kubeconfig)
        if value not in contexts:
            known = ", ".join(contexts) or "none"
            raise ValueError(f"{value!r} is not a context of {kubeconfig} (it has: {known})")
    return value


def _required_off_local(value: object, info: ValidationInfo, what: str) -> None:
    """ValueError when ``value`` is unset on devnet/testnet/mainnet, saying what to give (``what``)."""
    env = info.data.get("env")
    # mainnet without its confirmation is refused by validate_parameters, with its own message: not masked.
    unconfirmed_mainnet = env is Environment.MAINNET and not info.data.get("confirm_mainnet")
    if value is None and env not in (None, Environment.LOCAL) and not unconfirmed_mainnet:
        assert isinstance(env, Environment)
        raise ValueError(f"required when env is {env.value}: {what.format(env=env.value)}")


class DeployMonitoringParameters(RunbookParameters):
    """01-deploy-monitoring."""

    prometheus_url: str | None = Field(
        default=None, description="Prometheus base URL (default: local, the stack's; Kubernetes, prometheus-0 "
                                  "through the API server's pod proxy — or give a `kubectl port-forward` URL)")
    monitoring_state_dir: Path | None = Field(
        default=None, description="local: the monitoring stack's state directory, whose config/ Prometheus runs with "
                                  "(default: $GX_MONITORING_STACK_STATE_DIR, else ~/.local/state/gxlib/monitoring)")
    devnet_state_dir: Path | None = _devnet_state_dir()
    kubeconfig: Path | None = _kubeconfig()
    kube_context: str | None = _kube_context()
    reload: bool = Field(default=True, description="reload Prometheus after the configuration changed")
    reload_method: ReloadMethod = Field(
        default=ReloadMethod.HTTP, description="Kubernetes: how Prometheus is reloaded — http (POST /-/reload "
                                               "through the pod proxy) or signal (`kill -HUP 1` in prometheus-0)")
    targets_timeout_s: float = _timeout(180.0, "the three gx-* jobs' targets to be up")
    rules_timeout_s: float = _timeout(180.0, "the 18 alert rules to be loaded (Kubernetes: the kubelet takes up "
                                             "to about two minutes to bring a changed ConfigMap into the pod)")

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig_is_a_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _kubeconfig_file(value, info)

    @field_validator("kube_context")
    @classmethod
    def _context_is_in_the_kubeconfig(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _context_of_kubeconfig(value, info)

    @field_validator("reload_method")
    @classmethod
    def _signal_is_for_kubernetes(cls, value: ReloadMethod, info: ValidationInfo) -> ReloadMethod:
        if value is ReloadMethod.SIGNAL and info.data.get("env") is Environment.LOCAL:
            raise ValueError("signal reloads prometheus-0 on Kubernetes; env=local reloads the local Prometheus "
                             "through its lifecycle endpoint (http)")
        return value


class UpgradeChaincodeParameters(ChannelParameters):
    """02-upgrade-chaincode."""

    chaincode_name: str = Field(default="gxtv3", description="chaincode name on the channel")
    chaincode_version: str = Field(default="1.1", description="version of the new definition, e.g. 1.1")
    chaincode_label: str | None = Field(default=None,
                                        description="package label (default: <chaincode_name>_<chaincode_version>)")
    commit_timeout_s: float = _timeout(120.0, "the new definition to be committed on every peer")
    restart_timeout_s: float = _timeout(120.0, "the chaincode servers to answer with the new package")
    devnet_state_dir: Path | None = _devnet_state_dir()
    fabric_network_file: Path | None = _fabric_network_file("admin identities")
    kubeconfig: Path | None = Field(default=None, description="devnet/testnet/mainnet: the cluster's kubeconfig "
                                                              "(default: $KUBECONFIG, else ~/.kube/config)")
    kube_context: str | None = Field(default=None, description="devnet/testnet/mainnet: the kubeconfig context "
                                                               "(default: its current context)")
    chaincode_addresses: dict[str, str] = Field(
        default_factory=dict, description="devnet/testnet/mainnet: org → host:port its package points the org's "
                                          "peer at (default: the org's chaincode Service, "
                                          "<deployment>.<namespace>:<port>)")

    @field_validator("fabric_network_file")
    @classmethod
    def _network_file_is_given_off_local(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        _required_off_local(value, info, NETWORK_FILE_NEEDED)
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


class CommandParameters(BackendParameters):
    """Runbooks 03/04, which post commands and read the ledger. Off local there is no devnet to find the backend
    and the ledger by: the API, its token and the Fabric network's document are then required."""

    fabric_network_file: Path | None = _fabric_network_file("the service identity it reads the ledger as")
    prometheus_url: str | None = Field(
        default=None, description="devnet/testnet/mainnet without submitter_metrics_url: the Prometheus that scrapes "
                                  "the env's submitter, where circuit_breaker_state is read (e.g. a `kubectl "
                                  "port-forward` of prometheus-0); neither given: those checks are skipped")

    @field_validator("api_url")
    @classmethod
    def _api_url_is_given_off_local(cls, value: str | None, info: ValidationInfo) -> str | None:
        _required_off_local(value, info, "the backend API's base URL (the {env} ingress, or a `kubectl "
                                         "port-forward` of the API Service)")
        return value

    @field_validator("api_token")
    @classmethod
    def _api_token_is_given_off_local(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        _required_off_local(value, info, "the admin bearer token of the {env} backend API: export $GX_API_TOKEN "
                                         "(a secret, never written into the notebook)")
        return value

    @field_validator("fabric_network_file")
    @classmethod
    def _network_file_is_given_off_local(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        _required_off_local(value, info, NETWORK_FILE_NEEDED)
        # Absolute: the notebook runs in its record directory, not where the operator named the file.
        return value.expanduser().absolute() if value is not None else None


class BootstrapSystemParameters(CommandParameters):
    """03-bootstrap-system."""

    commit_timeout_s: float = _timeout(60.0, "the BOOTSTRAP_SYSTEM command to be committed in a block")
    projection_timeout_s: float = _timeout(30.0, "the four pool mints to reach the read model")


class ValidateCqrsParameters(CommandParameters):
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

    prometheus_url: str | None = Field(
        default=None, description="Prometheus base URL (default: local, the stack's; Kubernetes, prometheus-0 "
                                  "through the API server's pod proxy — or give a `kubectl port-forward` URL)")
    alertmanager_url: str | None = Field(
        default=None, description="Alertmanager base URL (default: local, the stack's; Kubernetes, the alertmanager "
                                  "Service through the API server's proxy)")
    kubeconfig: Path | None = _kubeconfig()
    kube_context: str | None = _kube_context()
    lag_window_minutes: int = Field(default=30, gt=0, le=7 * 24 * 60,
                                    description="how far back the projection-lag chart reaches")
    monitoring_state_dir: Path | None = Field(
        default=None, description="local: the monitoring stack's state directory, for its URLs and the webhook's "
                                  "record (default: $GX_MONITORING_STACK_STATE_DIR, else "
                                  "~/.local/state/gxlib/monitoring)")
    breaker_drill: bool | None = Field(
        default=None, description="run the circuit-breaker drill (gateway made unreachable; takes a few minutes); "
                                  "local only, where the Gateway peer is a process of this machine (default: true on "
                                  "local, false elsewhere)")
    breaker_open_timeout_s: float = _timeout(120.0, "the circuit breaker to open once the gateway is unreachable")
    alert_firing_timeout_s: float = _timeout(240.0, "FabricCircuitBreakerOpen to fire (its rule has `for: 1m`) "
                                                    "and reach Alertmanager")
    recovery_timeout_s: float = _timeout(300.0, "the breaker to close, the drill's command to commit and the "
                                                "alert to resolve after the gateway is back")
    report_path: Path | None = Field(default=None,
                                     description="where the SLO report (HTML) goes (default: in the run's record)")

    @field_validator("kubeconfig")
    @classmethod
    def _kubeconfig_is_a_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return _kubeconfig_file(value, info)

    @field_validator("kube_context")
    @classmethod
    def _context_is_in_the_kubeconfig(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _context_of_kubeconfig(value, info)

    @field_validator("breaker_drill")
    @classmethod
    def _drill_is_local_only(cls, value: bool | None, info: ValidationInfo) -> bool:
        env = info.data.get("env")
        local = env in (None, Environment.LOCAL)  # None: env itself was refused, with its own message
        if value is None:
            return local
        if value and not local:
            assert isinstance(env, Environment)
            raise ValueError(f"the drill stops the submitter's Gateway peer process, which only env=local can do; "
                             f"on {env.value} the peers are pods this runbook does not stop — set breaker_drill "
                             "false")
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
