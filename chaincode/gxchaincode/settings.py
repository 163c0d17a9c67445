"""Constants the chaincode writes into the ledger at bootstrap. After bootstrap the ledger holds them (the
genesis tier table and the velocity-tax threshold are ledger data, not code), so later code changes do not
alter a bootstrapped system."""

from __future__ import annotations

from gxchaincode.amounts import PRECISION

SYSTEM_USER_GENESIS_POOL = "SYSTEM_USER_GENESIS_POOL"
SYSTEM_GOVT_GENESIS_POOL = "SYSTEM_GOVT_GENESIS_POOL"
SYSTEM_CHARITABLE_POOL = "SYSTEM_CHARITABLE_POOL"
SYSTEM_LOAN_POOL = "SYSTEM_LOAN_POOL"

# Pool -> coins minted by BootstrapSystem (SPEC §2.3), in this order.
BOOTSTRAP_POOLS: tuple[tuple[str, int], ...] = (
    (SYSTEM_USER_GENESIS_POOL, 500_000_000),
    (SYSTEM_GOVT_GENESIS_POOL, 300_000_000),
    (SYSTEM_CHARITABLE_POOL, 50_000_000),
    (SYSTEM_LOAN_POOL, 100_000_000),
)
POOL_IDS = tuple(pool for pool, _ in BOOTSTRAP_POOLS)

DEFAULT_COUNTRIES: tuple[tuple[str, str], ...] = (
    ("US", "United States"),
    ("CA", "Canada"),
    ("GB", "United Kingdom"),
)

# Genesis allocation by registration order: the first 1,000 users get 500 coins each, and so on.
GENESIS_TIERS: tuple[dict[str, int | None], ...] = (
    {"tier": 1, "maxUserNumber": 1_000, "coins": 500},
    {"tier": 2, "maxUserNumber": 10_000, "coins": 250},
    {"tier": 3, "maxUserNumber": 100_000, "coins": 100},
    {"tier": 4, "maxUserNumber": None, "coins": 50},
)

# A balance at or above this many units starts the account's velocity-tax timer.
VELOCITY_TAX_THRESHOLD_UNITS = 1_000_000 * PRECISION

BOOTSTRAP_REMARK = "genesis pool allocation at system bootstrap"
