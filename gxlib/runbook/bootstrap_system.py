"""Runbook 03 · bootstrap system (SPEC §8.3): one method per section of ``notebooks/03-bootstrap-system.ipynb``.

``BOOTSTRAP_SYSTEM`` goes in through the API like any command and is followed through the outbox to its block;
then the four pools are verified on the ledger and in the read model. The ledger decides whether there is
anything to do: ``AdminContract:GetSystemStatus`` says *bootstrapped* → the step is "already done", no command
is posted, and the verification reads what is there.

On env=local the backend and the ledger are found through the devnet; on devnet/testnet/mainnet they are the
parameters' (``api_url``, ``api_token``, ``fabric_network_file``), else the env's cluster's (a port-forward, its
Secrets; see :mod:`gxlib.runbook.steps_backend`), and the chaincode pre-check asks the env's peers only (its servers
are pods). The submitter's checks read its ``/metrics`` or Prometheus; with neither reachable from here off local
they are skipped, saying why.

After a stop (the devnet or backend not running, not reachable) later sections do nothing; a real run records
the stop as a failed check, a dry run as a skipped one (it changes nothing either way).
"""

from __future__ import annotations

from typing import Any

from gxlib.backend.commands import CommandType
from gxlib.errors import GxError
from gxlib.monitoring.catalog import slo
from gxlib.runbook.display import show_table
from gxlib.runbook.parameters import PRECISION, BootstrapSystemParameters
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps_backend import (
    BOOTSTRAP_POOLS,
    TRACE_COLUMNS,
    BackendSection,
    BackendTarget,
    CommandTrace,
    follow_to_block,
    idempotency_key,
    no_submitter_probe,
    pool_units,
    submit_command,
    wait_projected,
)

RUNBOOK = "03-bootstrap-system"
PROJECTION_SLO_MS = float(slo("projection_lag").target)


class BootstrapSystem(BackendSection[BootstrapSystemParameters]):
    """Runbook 03, section by section."""

    parameters = BootstrapSystemParameters
    submits = (CommandType.BOOTSTRAP_SYSTEM,)

    def __init__(self, rb: Runbook, target: BackendTarget | None = None) -> None:
        super().__init__(rb, target)
        self.bootstrapped_before: bool | None = None
        self.trace: CommandTrace | None = None

    def _pre_check(self, name: str, passed: bool, *, measured: object, expected: object, why: str) -> None:
        """A pre-check: passed, or failed — in a dry run skipped, saying that a real run would stop here."""
        if passed:
            self.rb.checks.record(name, True, measured=measured, expected=expected)
        elif self.rb.dry_run:
            self.rb.checks.skip(name, f"dry run: {measured}; {why}; a real run stops here", expected=expected)
        else:
            self.rb.checks.record(name, False, measured=measured, expected=expected, detail=why)

    # --- 1. pre-checks -----------------------------------------------------------------------------------------
    def pre_checks(self) -> None:
        """Devnet and backend reachable, chaincode committed and answering, submitter healthy, breaker closed."""
        target = self.find_backend()
        if target is None:
            return

        status = target.chaincode_status(self.rb.progress)
        committed = status.committed and status.answering
        self._pre_check("chaincode committed and answering", committed,
                        measured=f"{status.name} {status.version} seq {status.sequence}" if status.committed
                        else "not committed", expected="committed, answering",
                        why="deploy it first: `gx chaincode deploy` / runbook 02")
        if target.submitter is None:
            # Not seen is not a reason to stop: with an open breaker the command waits in the outbox, and the
            # follow section says so.
            seen = no_submitter_probe(self.params.env)
            self.rb.checks.skip("submitter healthy", seen)
            self.rb.checks.skip("circuit breaker closed", seen, expected="0 (closed)")
            breaker_closed = True
        else:
            state, seen = target.submitter.breaker_state()
            self._pre_check("submitter healthy", state is not None, measured=seen, expected=target.submitter.where,
                            why=seen)
            self._pre_check("circuit breaker closed", state == 0.0, measured=seen, expected="0 (closed)",
                            why="an open breaker means the submitter cannot reach the Gateway")
            breaker_closed = state == 0.0
        if not committed:
            self.stopped = "the chaincode is not committed and answering: nothing is submitted"
            return
        if not breaker_closed:
            self.stopped = "the submitter is not healthy or its breaker is not closed: nothing is submitted"

        ledger = target.ledger.system_status()
        self.bootstrapped_before = bool(ledger["bootstrapped"])
        show_table("Before the bootstrap", [
            {"what": "ledger (GetSystemStatus)", "value": "bootstrapped" if self.bootstrapped_before
             else "not bootstrapped"},
            {"what": "chaincode", "value": f"{status.name} version {status.version}, sequence {status.sequence} "
                                           f"on {status.channel}"},
            {"what": "submitter", "value": seen},
            {"what": "read model", "value": f"bootstrapped={target.api.system_status().bootstrapped}"},
        ], ("what", "value"))

    # --- 2. submit -----------------------------------------------------------------------------------------------
    def submit(self) -> None:
        """``BOOTSTRAP_SYSTEM`` through the API, unless the ledger says it is bootstrapped ("already done")."""
        if self.skip_section("submit BOOTSTRAP_SYSTEM"):
            return
        assert self.target is not None
        api, ledger = self.target.api, self.target.ledger
        key = idempotency_key(RUNBOOK, self.target.channel, "BOOTSTRAP_SYSTEM")

        def post() -> str:
            self.trace = submit_command(api, "bootstrap", "BOOTSTRAP_SYSTEM", {}, key)
            return self.trace.command_id

        self.rb.step("submit BOOTSTRAP_SYSTEM", changes=f"POST BOOTSTRAP_SYSTEM (idempotency key {key})",
                     is_done=lambda: bool(ledger.system_status()["bootstrapped"]), apply=post)
        if self.trace is not None:
            self.rb.progress.info(f"  accepted as command {self.trace.command_id}"
                                  f"{' (the original: the key was known)' if self.trace.duplicate else ''}")

    # --- 3. follow -----------------------------------------------------------------------------------------------
    def follow(self) -> None:
        """The command through the outbox (PENDING → PROCESSING → COMMITTED) to its block."""
        if self.skip_section("follow the command"):
            return
        assert self.target is not None
        if self.trace is None:
            reason = "already bootstrapped: no command was posted" if self.bootstrapped_before else \
                "dry run: no command was posted"
            self.rb.checks.skip("BOOTSTRAP_SYSTEM committed", reason)
            return
        trace = follow_to_block(self.rb, self.target.api, self.trace, self.params.commit_timeout_s)
        self.rb.checks.equal("BOOTSTRAP_SYSTEM committed", trace.status, "COMMITTED",
                             detail=f"block {trace.block}, tx {trace.fabric_tx_id}" if trace.block is not None
                             else (trace.error or ""))
        if trace.status != "COMMITTED":
            self.stopped = f"BOOTSTRAP_SYSTEM ended {trace.status}: {trace.error}"

    # --- 4. ledger -----------------------------------------------------------------------------------------------
    def verify_ledger(self) -> None:
        """The four pools' balances on the ledger (``TokenomicsContract:GetBalance``)."""
        if self.skip_section("verify the ledger"):
            return
        assert self.target is not None
        ledger = self.target.ledger
        if not ledger.system_status()["bootstrapped"]:
            for pool in BOOTSTRAP_POOLS:
                self.rb.checks.skip(f"ledger {pool}", "not bootstrapped (dry run)", expected=pool_units(pool))
            return
        rows: list[dict[str, Any]] = []
        fresh = self.trace is not None
        for pool in BOOTSTRAP_POOLS:
            balance = ledger.balance(pool)
            expected = pool_units(pool)
            rows.append({"pool": pool, "ledger balance": balance, "coins": balance // PRECISION,
                         "minted at bootstrap": expected})
            if fresh or balance == expected:
                self.rb.checks.equal(f"ledger {pool}", balance, expected, unit="units")
            else:
                # Bootstrapped before this run: since then mints into a pool, transfers and genesis distributions
                # have changed its balance, so there is nothing to hold it to (the read model is compared below).
                self.rb.checks.skip(f"ledger {pool}", f"bootstrapped before this run; the balance is {balance} units "
                                    "now — later mints, transfers and genesis distributions change it",
                                    expected=expected, unit="units")
        show_table("The pools on the ledger", rows, ("pool", "ledger balance", "coins", "minted at bootstrap"))

    # --- 5. read model -------------------------------------------------------------------------------------------
    def verify_read_model(self) -> None:
        """The four bootstrap mints projected: each pool's ``minted`` and balance in the read model."""
        if self.skip_section("verify the read model"):
            return
        assert self.target is not None
        api, ledger = self.target.api, self.target.ledger
        if not ledger.system_status()["bootstrapped"]:
            self.rb.checks.skip("read model: four pool mints", "not bootstrapped (dry run)")
            return

        def projected() -> tuple[bool, str | None]:
            pools = {p.poolId: p for p in api.pools()}
            done = [name for name in BOOTSTRAP_POOLS if name in pools and pools[name].minted >= pool_units(name)]
            return len(done) == len(BOOTSTRAP_POOLS), f"{len(done)} of 4 pool mints projected"

        try:
            if self.trace is not None:
                wait_projected(self.rb, self.trace, "the four pool mints", projected, self.params.projection_timeout_s)
            else:
                self.rb.progress.wait_until("the four pool mints in the read model", projected,
                                            timeout_s=self.params.projection_timeout_s)
        except GxError as exc:  # WaitTimeout, the API or the ledger refusing: still show what is there
            self.rb.checks.record("read model: four pool mints", False, detail=str(exc))
        pools = {p.poolId: p for p in api.pools()}
        rows = []
        for name in BOOTSTRAP_POOLS:
            pool = pools.get(name)
            ledger_balance = ledger.balance(name)
            rows.append({"pool": name, "minted (read model)": pool.minted if pool else None,
                         "balance (read model)": pool.balance if pool else None, "balance (ledger)": ledger_balance})
            minted = pool.minted if pool else None
            if self.trace is not None or minted == pool_units(name):
                self.rb.checks.equal(f"read model mint {name}", minted, pool_units(name), unit="units")
            else:
                # Bootstrapped before this run: the pool's total minted includes any later Mint into it.
                self.rb.checks.record(f"read model mint {name}", minted is not None and minted >= pool_units(name),
                                      measured=minted, expected=f">= {pool_units(name)}", unit="units",
                                      detail="bootstrapped before this run; includes later mints into the pool")
            self.rb.checks.equal(f"read model == ledger {name}", pool.balance if pool else None, ledger_balance,
                                 unit="units")
        show_table("The pools in the read model", rows,
                   ("pool", "minted (read model)", "balance (read model)", "balance (ledger)"))
        if self.trace is not None:
            show_table("BOOTSTRAP_SYSTEM through the system", [self.trace.row()], TRACE_COLUMNS)
            if self.trace.committed_to_projected_ms is not None:
                self.rb.checks.below("BOOTSTRAP_SYSTEM committed → projected", self.trace.committed_to_projected_ms,
                                     PROJECTION_SLO_MS, unit="ms", detail="SLO: projection lag")
