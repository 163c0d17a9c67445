"""A small blocking facade over the asyncio Gateway client, for notebooks and scripts.

It runs the async client on a private event loop in a background thread, so it also works inside Jupyter (whose
own loop is already running)::

    gateway = SyncGateway.from_environment(env, "super_admin")
    contract = gateway.network("gxchannel").contract("gxtv3")
    contract.submit("TokenomicsContract:Mint", "acct-1", "100", "airdrop")
    gateway.close()
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from gxlib.fabric.commit import CommitStatus
from gxlib.fabric.connection import PeerEndpoint
from gxlib.fabric.contract import Contract, SubmitResult
from gxlib.fabric.gateway import Gateway, Timeouts
from gxlib.fabric.identity import Identity
from gxlib.fabric.network import Network
from gxlib.fabric.signer import Signer
from gxlib.fabric.transaction import PreparedTransaction

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gx-fabric-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        """Cancel what still runs on the loop and wait for it (as :func:`asyncio.run` does at its end), then stop
        and close the loop. Without that, gRPC's own task of a call still waiting for its status was destroyed
        pending with the loop ("Task was destroyed but it is pending!" on stderr)."""
        try:
            asyncio.run_coroutine_threadsafe(_finish_tasks(), self.loop).result(timeout=5)
        except (TimeoutError, RuntimeError):
            pass  # a loop already stopped, or a task that will not end: close anyway
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            self.loop.close()


async def _finish_tasks() -> None:
    """Cancel every other task of the running loop and wait until they have ended; close async generators."""
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


class SyncGateway:
    """Blocking Gateway: the same calls as :class:`~gxlib.fabric.gateway.Gateway`, returning results directly."""

    def __init__(self, endpoint: PeerEndpoint, identity: Identity, signer: Signer, *,
                 timeouts: Timeouts | None = None) -> None:
        self._runner = _LoopThread()
        self.gateway = Gateway(endpoint, identity, signer, timeouts=timeouts)

    @classmethod
    def from_environment(cls, environment: str | Path | dict[str, Any], identity: str,
                         org: str | None = None) -> SyncGateway:
        """See :meth:`Gateway.from_environment <gxlib.fabric.gateway.Gateway.from_environment>`."""
        gateway = Gateway.from_environment(environment, identity, org)
        return cls(gateway.endpoint, gateway.identity, gateway.signer, timeouts=gateway.timeouts)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run any coroutine of the async client on this facade's loop."""
        return self._runner.run(coro)

    def network(self, name: str) -> SyncNetwork:
        return SyncNetwork(self, self.gateway.network(name))

    def close(self) -> None:
        self._runner.run(self.gateway.close())
        self._runner.stop()

    def __enter__(self) -> SyncGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncNetwork:
    def __init__(self, owner: SyncGateway, network: Network) -> None:
        self._owner = owner
        self.network = network

    def contract(self, chaincode: str, contract_name: str | None = None) -> SyncContract:
        return SyncContract(self._owner, self.network.contract(chaincode, contract_name))

    def submit(self, transaction: PreparedTransaction) -> None:
        self._owner.run(self.network.submit(transaction))

    def commit_status(self, tx_id: str, timeout: float | None = None) -> CommitStatus:
        return self._owner.run(self.network.commit_status(tx_id, timeout))

    def transaction_status(self, tx_id: str) -> CommitStatus | None:
        return self._owner.run(self.network.transaction_status(tx_id))

    def block_height(self) -> int:
        return self._owner.run(self.network.block_height())


class SyncContract:
    def __init__(self, owner: SyncGateway, contract: Contract) -> None:
        self._owner = owner
        self.contract = contract

    def evaluate(self, function: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                 target_organizations: Sequence[str] = ()) -> bytes:
        return self._owner.run(self.contract.evaluate(function, *args, transient=transient,
                                                      target_organizations=target_organizations))

    def submit(self, function: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
               endorsing_organizations: Sequence[str] = ()) -> SubmitResult:
        return self._owner.run(self.contract.submit(function, *args, transient=transient,
                                                    endorsing_organizations=endorsing_organizations))

    def prepare(self, function: str, *args: str | bytes, transient: Mapping[str, bytes] | None = None,
                endorsing_organizations: Sequence[str] = ()) -> PreparedTransaction:
        return self._owner.run(self.contract.prepare(function, *args, transient=transient,
                                                     endorsing_organizations=endorsing_organizations))

    def submit_prepared(self, transaction: PreparedTransaction) -> SubmitResult:
        return self._owner.run(self.contract.submit_prepared(transaction))
