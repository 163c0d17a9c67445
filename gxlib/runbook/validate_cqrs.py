"""Runbook 04 · validate CQRS (SPEC §8.4): one method per section of ``notebooks/04-validate-cqrs.ipynb``.

Real commands go in through the API — ``INITIALIZE_COUNTRY_DATA``, ``CREATE_USER``, ``DISTRIBUTE_GENESIS``,
``MINT`` — and each is followed API → outbox → block → projection, timing the two stages the SLOs speak about:
accepted → committed (the write side) and committed → projected (the read side, SLO < ``projection_slo_ms``).

Safe to run twice: every step first asks whether its effect is already there (the ledger for the user, its
genesis and its balance; the read model for the countries) and then posts nothing ("already done"). Each command
carries an idempotency key derived from the parameters, so even a step repeated after a crash between POST and
commit gets the original command back instead of a second one.

On env=local the backend and the ledger are found through the devnet; on devnet/testnet/mainnet they are the
parameters' (``api_url``, ``api_token``, ``fabric_network_file``), else the env's cluster's (a port-forward, its
Secrets; see :mod:`gxlib.runbook.steps_backend`).
"""

from __future__ import annotations

from typing import Any

from gxlib.backend.client import BackendClient
from gxlib.backend.commands import CommandType
from gxlib.errors import GxError
from gxlib.runbook.display import show_table
from gxlib.runbook.parameters import PRECISION, ValidateCqrsParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps import AlreadyDone
from gxlib.runbook.steps_backend import (
    TRACE_COLUMNS,
    BackendSection,
    BackendTarget,
    CommandTrace,
    follow_to_block,
    idempotency_key,
    no_submitter_probe,
    submit_command,
    wait_projected,
)

RUNBOOK = "04-validate-cqrs"
GENESIS_POOL = "SYSTEM_USER_GENESIS_POOL"


class CommandNotCommitted(GxError):
    """A runbook command ended FAILED or in the DLQ; names it and carries the chaincode's message."""

    def __init__(self, trace: CommandTrace) -> None:
        super().__init__(f"{trace.command_type} ({trace.command_id}) ended {trace.status}: {trace.error}",
                         hint="the outbox row keeps the error: `gx backend command show " + trace.command_id + "`")
        self.trace = trace


class ValidateCqrs(BackendSection[ValidateCqrsParameters]):
    """Runbook 04, section by section; after a stop later sections do nothing."""

    parameters = ValidateCqrsParameters
    submits = (CommandType.INITIALIZE_COUNTRY_DATA, CommandType.CREATE_USER, CommandType.DISTRIBUTE_GENESIS,
               CommandType.MINT)

    def __init__(self, rb: Runbook, target: BackendTarget | None = None) -> None:
        super().__init__(rb, target)
        self.traces: list[CommandTrace] = []  # the commands this run submitted (not an earlier run's)
        self.balance_before_mint: int | None = None

    @property
    def api(self) -> BackendClient:
        assert self.target is not None
        return self.target.api

    def _key(self, *parts: object) -> str:
        assert self.target is not None
        return idempotency_key(RUNBOOK, self.target.channel, *parts)

    def _command(self, name: str, command_type: str, payload: dict[str, Any], key: str, what: str,
                 projected: Any) -> str | AlreadyDone:
        """POST, follow to the block, wait for the projection; raises unless COMMITTED (the step then fails).
        A command the API answers as a duplicate was submitted by an earlier run: it is followed to its end but
        not timed (its timestamps are that run's), and the step is "already done"."""
        trace = submit_command(self.api, name, command_type, payload, key)
        if not trace.duplicate:
            self.traces.append(trace)
        follow_to_block(self.rb, self.api, trace, self.params.commit_timeout_s)
        if trace.status != "COMMITTED":
            raise CommandNotCommitted(trace)
        wait_projected(self.rb, trace, what, projected, self.params.projection_timeout_s)
        if trace.duplicate:
            return AlreadyDone(f"submitted by an earlier run: {trace.command_id}, committed in block {trace.block}")
        self.rb.progress.info(f"  {name}: block {trace.block}, accepted→committed {trace.accepted_to_committed_ms} "
                              f"ms, committed→projected {trace.committed_to_projected_ms} ms")
        return trace.command_id

    # --- 1. connect ----------------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Find the backend and the ledger; the ledger must be bootstrapped (runbook 03) and the breaker closed
        (off local without submitter_metrics_url or prometheus_url that check is skipped, saying why)."""
        if self.find_backend() is None:
            return
        assert self.target is not None
        bootstrapped = bool(self.target.ledger.system_status()["bootstrapped"])
        if not bootstrapped:
            self.stop("system bootstrapped", "the ledger is not bootstrapped: run 03-bootstrap-system first")
            return
        if self.target.submitter is None:
            self.rb.checks.skip("circuit breaker closed", no_submitter_probe(self.params.env), expected=0.0)
            return
        state, seen = self.target.submitter.breaker_state()
        if state != 0.0:
            # Commands would wait in the outbox (breaker open) or not be sent at all (no submitter).
            self.stop("circuit breaker closed", f"{seen}: the submitter cannot deliver commands now")
            return
        self.rb.checks.equal("circuit breaker closed", state, 0.0, detail=seen)

    # --- 2. countries --------------------------------------------------------------------------------------------
    def initialise_countries(self) -> None:
        countries = self.params.countries
        if self.skip_section("initialise countries"):
            return

        def known() -> set[str]:
            return set(self.api.system_status().countries)

        def apply() -> str | AlreadyDone:
            return self._command(
                "initialise countries", "INITIALIZE_COUNTRY_DATA", {"countries": [{"code": c} for c in countries]},
                self._key("INITIALIZE_COUNTRY_DATA", *countries), f"countries {', '.join(countries)}",
                lambda: (set(countries) <= known(), f"read model has {sorted(known())}"))

        self.rb.step("initialise countries", changes=f"INITIALIZE_COUNTRY_DATA for {', '.join(countries)}",
                     is_done=lambda: set(countries) <= known(), apply=apply)

    # --- 3. test user --------------------------------------------------------------------------------------------
    def create_user(self) -> None:
        user_id, country = self.params.test_user_id, self.params.test_user_country
        if self.skip_section("create the test user"):
            return
        assert self.target is not None
        ledger = self.target.ledger

        def apply() -> str | AlreadyDone:
            return self._command(
                "create test user", "CREATE_USER",
                {"userId": user_id, "countryCode": country, "displayName": f"{RUNBOOK} test user"},
                self._key("CREATE_USER", user_id), f"UserProfile {user_id}",
                lambda: (self.api.user(user_id) is not None, "no UserProfile row yet"))

        self.rb.step("create the test user", changes=f"CREATE_USER {user_id} in {country}",
                     is_done=lambda: ledger.user(user_id) is not None, apply=apply)

    # --- 4. genesis + mint ---------------------------------------------------------------------------------------
    def distribute_genesis_and_mint(self) -> None:
        user_id, amount = self.params.test_user_id, self.params.mint_amount
        if self.skip_section("distribute genesis and mint"):
            return
        assert self.target is not None
        ledger = self.target.ledger

        def projected_balance() -> tuple[bool, str | None]:
            account = self.api.account(user_id)
            on_ledger = ledger.balance(user_id)
            seen = account.balance if account else None
            return seen == on_ledger, f"read model {seen}, ledger {on_ledger}"

        def genesis_done() -> bool:
            user = ledger.user(user_id)
            return bool(user and user.get("genesisDistributed"))

        def genesis() -> str | AlreadyDone:
            def projected() -> tuple[bool, str | None]:
                profile = self.api.user(user_id)
                if profile is None or not profile.genesisDistributed:
                    return False, "UserProfile not yet genesisDistributed"
                return projected_balance()

            return self._command("distribute genesis", "DISTRIBUTE_GENESIS", {"userId": user_id},
                                 self._key("DISTRIBUTE_GENESIS", user_id), f"genesis of {user_id}", projected)

        self.rb.step("distribute genesis", changes=f"DISTRIBUTE_GENESIS to {user_id} (its tier's allocation from "
                                                   f"{GENESIS_POOL})", is_done=genesis_done, apply=genesis)

        # This run's mint is the command its parameters name (user, amount): done when that command, submitted
        # by an earlier run with this token, committed — whatever other mints the account received since.
        key = self._key("MINT", user_id, amount)

        def mint_done() -> bool:
            earlier = self.api.command_by_key(key)
            return earlier is not None and earlier.status == "COMMITTED"

        def mint() -> str | AlreadyDone:
            self.balance_before_mint = ledger.balance(user_id)
            return self._command("mint", "MINT", {"accountId": user_id, "amount": amount,
                                                  "remark": f"{RUNBOOK}: validation mint"},
                                 key, f"mint to {user_id}", projected_balance)

        self.rb.step("mint to the test user", changes=f"MINT {amount} units ({amount / PRECISION:g} coins) to "
                                                      f"{user_id}", is_done=mint_done, apply=mint)

    # --- 5. verify -----------------------------------------------------------------------------------------------
    def verify(self) -> None:
        """The ``UserProfile`` row against the ledger's user, and balances: ledger == read model."""
        user_id = self.params.test_user_id
        if self.skip_section("verify"):
            return
        assert self.target is not None
        ledger = self.target.ledger
        on_ledger = ledger.user(user_id)
        if on_ledger is None:
            self.rb.checks.skip("UserProfile row", "dry run: the test user does not exist yet")
            return
        profile = self.api.user(user_id)
        self.rb.checks.record("UserProfile row exists", profile is not None, measured=user_id if profile else None)
        if profile is not None:
            self.rb.checks.equal("UserProfile countryCode", profile.countryCode, on_ledger.get("countryCode"))
            self.rb.checks.equal("UserProfile userNumber", profile.userNumber, on_ledger.get("userNumber"))
            self.rb.checks.equal("UserProfile genesisDistributed", profile.genesisDistributed,
                                 bool(on_ledger.get("genesisDistributed")))
            self.rb.checks.equal("UserProfile genesisAmount", profile.genesisAmount, on_ledger.get("genesisAmount"),
                                 unit="units")
        rows = []
        for account_id in (user_id, GENESIS_POOL):
            ledger_balance = ledger.balance(account_id)
            account = self.api.account(account_id)
            projected = account.balance if account else None
            rows.append({"account": account_id, "ledger": ledger_balance, "read model": projected,
                         "coins": ledger_balance / PRECISION})
            self.rb.checks.equal(f"balance {account_id}: read model == ledger", projected, ledger_balance,
                                 unit="units")
        minted = next((t for t in self.traces if t.command_type == "MINT"), None)
        if minted is not None and self.balance_before_mint is not None:
            grown = ledger.balance(user_id) - self.balance_before_mint
            self.rb.checks.equal(f"balance {user_id} grew by mint_amount", grown, self.params.mint_amount,
                                 unit="units", detail=f"MINT {minted.command_id} in block {minted.block}")
        else:
            self.rb.checks.skip(f"balance {user_id} grew by mint_amount",
                                "this run minted nothing: the mint of these parameters was done by an earlier run")
        show_table("The test user", [{"field": k, "ledger": on_ledger.get(k),
                                      "read model": getattr(profile, k, None) if profile else None}
                                     for k in ("countryCode", "userNumber", "genesisDistributed", "genesisAmount")],
                   ("field", "ledger", "read model"))
        show_table("Balances: ledger and read model", rows, ("account", "ledger", "read model", "coins"))

    # --- 6. timings ----------------------------------------------------------------------------------------------
    def timings(self) -> None:
        """Per command: accepted → committed and committed → projected, against the SLOs."""
        if self.skip_section("timings"):
            return
        if not self.traces:
            self.rb.checks.skip("per-stage timings", "no command was posted in this run (dry run or already done)")
            return
        show_table("Each command API → outbox → block → projection", [t.row() for t in self.traces], TRACE_COLUMNS)
        for trace in self.traces:
            committed, projected = trace.accepted_to_committed_ms, trace.committed_to_projected_ms
            if committed is not None:
                self.rb.checks.below(f"{trace.command_type} accepted → committed", committed,
                                     self.params.commit_timeout_s * 1000, unit="ms", detail=f"block {trace.block}")
            if projected is not None:
                self.rb.checks.below(f"{trace.command_type} committed → projected", projected,
                                     self.params.projection_slo_ms, unit="ms", detail="SLO: projection lag")
