"""Each runbook's parameters are validated before anything is touched, with messages that name the parameter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gxlib.config import Environment
from gxlib.runbook import InvalidParameter, MainnetNotConfirmed, prepare, runbook, runbooks
from gxlib.runbook.parameters import (
    PRECISION,
    UpgradeChaincodeParameters,
    ValidateCqrsParameters,
    ValidateMonitoringParameters,
)

ALL = [spec.name for spec in runbooks()]


@pytest.mark.parametrize("name", ALL)
def test_defaults_are_valid_and_act_on_local_for_real(name: str) -> None:
    _, params = prepare(name, {}, environ={})
    assert params.env is Environment.LOCAL
    assert params.dry_run is False and params.confirm_mainnet is False


@pytest.mark.parametrize(("name", "parameter", "value", "why"), [
    ("01-deploy-monitoring", "env", "prod", "'local', 'devnet', 'testnet' or 'mainnet'"),
    ("01-deploy-monitoring", "targets_timeout_s", "0", "greater than 0"),
    ("01-deploy-monitoring", "reload", "perhaps", "valid boolean"),
    ("02-upgrade-chaincode", "chaincode_version", "1 1", "not a valid version"),
    ("02-upgrade-chaincode", "chaincode_name", "gx tv3", "not a valid chaincode name"),
    ("02-upgrade-chaincode", "chaincode_label", "_label", "not a valid package label"),
    ("02-upgrade-chaincode", "channel", "Gx_Channel", "not a valid Fabric channel name"),
    ("02-upgrade-chaincode", "chaincode_addresses", '{"org1": "127.0.0.1"}', "is not host:port"),
    ("02-upgrade-chaincode", "chaincode_addresses", '{"org1": "127.0.0.1:70000"}', "is not host:port"),
    ("02-upgrade-chaincode", "chaincode_addresses", '{"Org 1": "cc:9999"}', "is not an org key"),
    ("03-bootstrap-system", "api_url", "ftp://api", "not an http(s) URL"),
    ("03-bootstrap-system", "commit_timeout_s", "-1", "greater than 0"),
    ("04-validate-cqrs", "mint_amount", "0", "greater than 0"),
    ("04-validate-cqrs", "mint_amount", str(2**64), "less than or equal to 18446744073709551615"),
    ("04-validate-cqrs", "mint_amount", "ten", "valid integer"),
    ("04-validate-cqrs", "countries", "US,usa", "not ISO 3166-1 alpha-2"),
    ("04-validate-cqrs", "countries", "US,US", "lists a country twice"),
    ("04-validate-cqrs", "test_user_id", "bad user", "not a valid user ID"),
    ("04-validate-cqrs", "test_user_country", "FR", "not one of the countries"),
    ("05-validate-monitoring", "lag_window_minutes", "0", "greater than 0"),
    ("05-validate-monitoring", "alertmanager_url", "localhost:9093", "not an http(s) URL"),
    ("05-validate-monitoring", "breaker_drill", "maybe", "valid boolean"),
])
def test_an_invalid_value_is_refused_naming_the_parameter_and_why(name: str, parameter: str, value: str,
                                                                  why: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare(name, {parameter: value}, environ={})
    assert caught.value.parameter == parameter
    assert f"invalid parameter {parameter!r}" in caught.value.message
    assert why in caught.value.message
    assert caught.value.runbook == name


@pytest.mark.parametrize("name", ALL)
def test_an_unknown_parameter_is_refused_and_the_known_ones_listed(name: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare(name, {"chanel": "gxchannel-local"}, environ={})
    assert caught.value.parameter == "chanel"
    assert "unknown parameter" in caught.value.message and "dry_run" in caught.value.message


def test_a_misspelt_parameter_is_answered_with_the_name_it_is_closest_to() -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare("04-validate-cqrs", {"mint_ammount": "500"}, environ={})
    assert "did you mean 'mint_amount'?" in caught.value.message


def test_an_unknown_parameter_like_no_other_gets_no_suggestion() -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare("04-validate-cqrs", {"zzqx": "1"}, environ={})
    assert "did you mean" not in caught.value.message


@pytest.mark.parametrize("name", ALL)
def test_mainnet_is_refused_without_the_confirmation(name: str) -> None:
    with pytest.raises(MainnetNotConfirmed) as caught:
        prepare(name, {"env": "mainnet"}, environ={})
    assert caught.value.parameter == "confirm_mainnet"
    assert "confirm_mainnet true" in (caught.value.hint or "")


# What a runbook needs besides the confirmation to act on a Kubernetes environment. The network file must be an
# existing JSON document (checked up front): NETWORK_FILE is written into it by the `network_file` fixture.
NETWORK_FILE = "net.json"
BACKEND_NEEDS = {"api_url": "https://api.devnet.example", "api_token": "s3cret-42",
                 "fabric_network_file": NETWORK_FILE}
KUBERNETES_NEEDS: dict[str, dict[str, str]] = {"02-upgrade-chaincode": {"fabric_network_file": NETWORK_FILE},
                                               "03-bootstrap-system": BACKEND_NEEDS, "04-validate-cqrs": BACKEND_NEEDS}


@pytest.fixture
def network_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A Fabric network document at NETWORK_FILE, relative to the current directory (tmp_path)."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / NETWORK_FILE
    path.write_text(json.dumps({"peers": []}))
    return path


@pytest.mark.usefixtures("network_file")
@pytest.mark.parametrize("name", ALL)
def test_mainnet_is_accepted_with_the_confirmation(name: str) -> None:
    raw = {"env": "mainnet", "confirm_mainnet": "true", **KUBERNETES_NEEDS.get(name, {})}
    _, params = prepare(name, raw, environ={})
    assert params.env is Environment.MAINNET


def test_command_line_strings_are_parsed_by_the_model() -> None:
    _, params = prepare("04-validate-cqrs", {"countries": "US, CA", "mint_amount": "500", "dry_run": "true",
                                             "test_user_country": "CA"}, environ={})
    assert isinstance(params, ValidateCqrsParameters)
    assert params.countries == ["US", "CA"] and params.mint_amount == 500 and params.dry_run is True
    _, params = prepare("04-validate-cqrs", {"countries": '["GB"]', "test_user_country": "GB"}, environ={})
    assert isinstance(params, ValidateCqrsParameters) and params.countries == ["GB"]


def test_dry_run_argument_overrides_the_parameter() -> None:
    _, params = prepare("03-bootstrap-system", {"dry_run": "false"}, dry_run=True, environ={})
    assert params.dry_run is True


@pytest.mark.usefixtures("network_file")
def test_channel_defaults_to_the_environment_profile() -> None:
    _, params = prepare("02-upgrade-chaincode", {"env": "testnet", **KUBERNETES_NEEDS["02-upgrade-chaincode"]},
                        environ={})
    assert isinstance(params, UpgradeChaincodeParameters)
    assert params.channel_name() == "gxchannel-testnet"
    assert params.package_label() == "gxtv3_1.1"
    _, params = prepare("02-upgrade-chaincode", {"channel": "other", "chaincode_version": "2.0"}, environ={})
    assert isinstance(params, UpgradeChaincodeParameters)
    assert params.channel_name() == "other" and params.package_label() == "gxtv3_2.0"


def test_mint_amount_default_is_100_coins_in_units() -> None:
    assert runbook("04-validate-cqrs").defaults()["mint_amount"] == 100 * PRECISION


def test_a_secret_comes_from_its_environment_variable_and_is_never_injected() -> None:
    _, params = prepare("03-bootstrap-system", {}, environ={"GX_API_TOKEN": "tok-123"})
    assert params.secret_values() == ["tok-123"]
    assert "api_token" not in params.notebook_values()
    assert params.public_values()["api_token"] == "***"
    assert "tok-123" not in repr(params) and "tok-123" not in params.model_dump_json()


def test_a_given_secret_wins_over_the_environment() -> None:
    _, params = prepare("03-bootstrap-system", {"api_token": "given"}, environ={"GX_API_TOKEN": "env"})
    assert params.secret_values() == ["given"]


def test_an_unknown_runbook_names_the_known_ones() -> None:
    from gxlib.runbook import UnknownRunbook

    with pytest.raises(UnknownRunbook) as caught:
        prepare("06-nothing", {})
    assert "04-validate-cqrs" in (caught.value.hint or "")


@pytest.mark.usefixtures("network_file")
@pytest.mark.parametrize("name", ["03-bootstrap-system", "04-validate-cqrs"])
@pytest.mark.parametrize("missing", ["api_url", "api_token", "fabric_network_file"])
def test_off_local_the_backend_runbooks_leave_api_url_token_and_network_file_to_the_cluster(name: str,
                                                                                             missing: str) -> None:
    # Issue 14: what is not given is found in the env's cluster at run time (tests/unit/runbook/
    # test_backend_in_cluster.py); a cluster that has it neither stops the run naming the parameter.
    raw = {"env": "devnet", **{k: v for k, v in BACKEND_NEEDS.items() if k != missing}}
    _, params = prepare(name, raw, environ={})
    assert getattr(params, missing) is None
    assert "s3cret-42" not in str(params.notebook_values())


@pytest.mark.usefixtures("network_file")
def test_off_local_the_chaincode_upgrade_still_needs_the_network_file() -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare("02-upgrade-chaincode", {"env": "devnet"}, environ={})
    assert caught.value.parameter == "fabric_network_file"
    assert "required when env is devnet" in caught.value.message


@pytest.mark.usefixtures("network_file")
@pytest.mark.parametrize("name", ["03-bootstrap-system", "04-validate-cqrs"])
def test_off_local_the_api_token_may_come_from_its_environment_variable(name: str) -> None:
    raw = {"env": "devnet", **{k: v for k, v in BACKEND_NEEDS.items() if k != "api_token"}}
    _, params = prepare(name, raw, environ={"GX_API_TOKEN": "from-env"})
    assert params.secret_values() == ["from-env"]
    assert "api_token" not in params.notebook_values()


@pytest.mark.parametrize("name", ["03-bootstrap-system", "04-validate-cqrs"])
def test_on_local_the_backend_is_found_through_the_devnet_without_those_parameters(name: str) -> None:
    _, params = prepare(name, {"env": "local"}, environ={})
    assert params.env is Environment.LOCAL


@pytest.mark.parametrize("name", ["03-bootstrap-system", "04-validate-cqrs", "05-validate-monitoring"])
def test_unconfirmed_mainnet_is_refused_for_the_confirmation_not_a_missing_parameter(name: str) -> None:
    with pytest.raises(MainnetNotConfirmed):
        prepare(name, {"env": "mainnet"}, environ={})


def test_the_breaker_drill_is_refused_where_the_peers_are_not_this_machines_naming_the_parameter_and_why() -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare("05-validate-monitoring", {"env": "testnet", "breaker_drill": "true"}, environ={})
    assert caught.value.parameter == "breaker_drill"
    assert "only env=local and env=devnet" in caught.value.message
    assert "set breaker_drill false" in caught.value.message


def test_the_breaker_drill_may_be_asked_for_on_devnet_whose_peers_are_this_machines_devnet() -> None:
    # Issue 14: the drill's Kubernetes form stops the host devnet's Gateway peer the submitter pods use.
    _, params = prepare("05-validate-monitoring", {"env": "devnet", "breaker_drill": "true"}, environ={})
    assert isinstance(params, ValidateMonitoringParameters) and params.breaker_drill is True


def test_the_breaker_drill_defaults_on_for_local_and_off_elsewhere() -> None:
    _, local = prepare("05-validate-monitoring", {}, environ={})
    _, devnet = prepare("05-validate-monitoring", {"env": "devnet"}, environ={})
    _, explicit = prepare("05-validate-monitoring", {"env": "testnet", "breaker_drill": "false"}, environ={})
    assert isinstance(local, ValidateMonitoringParameters) and local.breaker_drill is True
    assert isinstance(devnet, ValidateMonitoringParameters) and devnet.breaker_drill is False
    assert isinstance(explicit, ValidateMonitoringParameters) and explicit.breaker_drill is False
    # What `gx runbook run` injects into the notebook: the resolved value, overriding the cell's local default.
    assert devnet.notebook_values()["breaker_drill"] is False
    assert runbook("05-validate-monitoring").defaults()["breaker_drill"] is True


def test_a_kubeconfig_is_refused_on_local_for_runbook_05() -> None:
    with pytest.raises(InvalidParameter) as caught:
        prepare("05-validate-monitoring", {"kube_context": "kind-gx"}, environ={})
    assert caught.value.parameter == "kube_context" and "env=local acts on this machine" in caught.value.message


def test_a_relative_network_file_is_made_absolute_before_the_notebook_runs_elsewhere(
        network_file: Path, tmp_path: Path) -> None:
    _, params = prepare("03-bootstrap-system", {**BACKEND_NEEDS, "env": "devnet", "fabric_network_file": "net.json"},
                        environ={})
    assert params.notebook_values()["fabric_network_file"] == str(tmp_path / "net.json")
