"""The FastAPI application: ``create_app(settings)`` (or with an engine and a registry, as tests do)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine

from gxlib import __version__
from gxlib.backend.api.intake import CommandIntakeRoute, authorize_command
from gxlib.backend.api.middleware import (
    CALLER_SCOPE_KEY,
    ROLE_SCOPE_KEY,
    BearerAuthMiddleware,
    BodyLimitMiddleware,
    MetricsMiddleware,
)
from gxlib.backend.api.problems import PROBLEM_JSON, install_problem_handlers, problem
from gxlib.backend.api.schemas import (
    AccountView,
    CommandAccepted,
    CommandRequest,
    CommandView,
    Health,
    PoolView,
    SystemStatusView,
    UserView,
)
from gxlib.backend.batching import WriteBatcher
from gxlib.backend.commands import UINT64_MAX, CommandType
from gxlib.backend.db import current_revision, head_revision, is_reachable, make_engine, migrate
from gxlib.backend.ids import LEDGER_ID_ANCHORED, LEDGER_ID_DESCRIPTION, MAX_LEDGER_ID_LENGTH
from gxlib.backend.metrics import http_metrics
from gxlib.backend.outbox import Outbox
from gxlib.backend.readmodel import ReadModel
from gxlib.backend.settings import ApiRole, BackendSettings

PRECISION = 100_000_000
API = "/api/v1"
PROBLEM: dict[str, Any] = {"description": "problem details (RFC 9457)", "content": {PROBLEM_JSON: {}}}
PROBLEMS: dict[int | str, dict[str, Any]] = {code: PROBLEM for code in (400, 401, 403, 404, 409, 413, 422)}
COMMAND_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **PROBLEMS,
    403: {**PROBLEM, "description": "the token's role may not submit this command (checked before the body is "
                                    "validated)"},
    415: {**PROBLEM, "description": "the body is not application/json (UTF-8)"}}
LedgerIdPath = Annotated[str, Path(pattern=LEDGER_ID_ANCHORED, max_length=MAX_LEDGER_ID_LENGTH,
                                   description=LEDGER_ID_DESCRIPTION)]

LedgerIdQuery = Annotated[str, Query(pattern=LEDGER_ID_ANCHORED, max_length=MAX_LEDGER_ID_LENGTH,
                                     description=LEDGER_ID_DESCRIPTION)]

bearer = HTTPBearer(auto_error=False, description="token mapped to a role: reader, operator or admin")


async def api_role(request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                   ) -> ApiRole:
    """The caller's role (authenticated by BearerAuthMiddleware); declares the bearer scheme in OpenAPI. Async
    because it only reads the scope: FastAPI runs a sync dependency in a worker thread, per request."""
    role = request.scope.get(ROLE_SCOPE_KEY)
    if role is None:  # pragma: no cover - the middleware refuses unauthenticated /api requests first
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return ApiRole(role)


Role = Annotated[ApiRole, Depends(api_role)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def create_app(settings: BackendSettings | None = None, *, engine: Engine | None = None,
               registry: CollectorRegistry | None = None) -> FastAPI:
    settings = settings or BackendSettings()
    if engine is None:
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size,
                             max_overflow=settings.db_max_overflow)
        if settings.migrate_on_start:
            migrate(engine)
    registry = registry or CollectorRegistry()
    metrics = http_metrics(registry)
    outbox = Outbox(engine)
    enqueues = WriteBatcher(engine)
    reads = ReadModel(engine)

    app = FastAPI(title="GX backend API", version=__version__,
                  description="Commands to the GX ledger (via the outbox) and the CQRS read models. "
                              "Every rejection is application/problem+json.")
    install_problem_handlers(app)
    # Outermost first: metrics see every response, including 413 and 401.
    app.add_middleware(BearerAuthMiddleware, tokens=dict(settings.api_tokens))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, service=settings.service_name,
                       routes=lambda: app.router.routes)
    app.state.engine = engine
    app.state.registry = registry
    _exact_uint64_bounds_in_openapi(app)

    async def submit_command(body: CommandRequest, role: Role, request: Request,
                             response: Response) -> CommandAccepted:
        """Accept a command into the outbox. A repeated idempotency key returns the original command.

        Checked in this order: the token's role (403), the media type (415, only UTF-8 application/json), the
        JSON itself (400: unique keys, no NaN), then the command's schema (422)."""
        kind = CommandType(body.type)
        authorize_command(role, kind)  # CommandIntakeRoute checked it already; kept beside the write it guards
        payload, caller = body.payload.model_dump(mode="json"), request.scope[CALLER_SCOPE_KEY]
        # The commands posted meanwhile are stored together: one transaction, one hand-off to a worker thread.
        result = await enqueues.run(lambda connection: outbox.enqueue(kind, payload, body.idempotencyKey,
                                                                      caller=caller, connection=connection))
        command = result.command
        location = f"{API}/commands/{command.id}"
        response.headers["Location"] = location
        return CommandAccepted(commandId=command.id, type=kind, status=command.status,
                               idempotencyKey=command.idempotency_key, duplicate=not result.created,
                               location=location)

    app.router.add_api_route(f"{API}/commands", submit_command, methods=["POST"], status_code=202,
                             response_model=CommandAccepted, responses=COMMAND_PROBLEMS, tags=["commands"],
                             route_class_override=CommandIntakeRoute)

    @app.get(f"{API}/commands", response_model=list[CommandView], responses=PROBLEMS, tags=["commands"])
    def find_commands(idempotencyKey: LedgerIdQuery, request: Request, _role: Role) -> list[CommandView]:
        """The caller's command with this idempotency key, as a list of at most one (empty: never submitted).
        What a client asks before it decides whether a command it would submit is already done."""
        found = outbox.find_by_key(idempotencyKey, request.scope[CALLER_SCOPE_KEY])
        return [CommandView.of(found)] if found is not None else []

    @app.get(f"{API}/commands/{{command_id}}", response_model=CommandView, responses=PROBLEMS, tags=["commands"])
    def get_command(command_id: Annotated[str, Path(max_length=64)], _role: Role) -> CommandView:
        return CommandView.of(outbox.get(command_id))

    @app.get(f"{API}/users", response_model=list[UserView], responses=PROBLEMS, tags=["read models"])
    def list_users(_role: Role, limit: Limit = 100, offset: Offset = 0) -> list[UserView]:
        return [_user(u) for u in reads.users(limit, offset)]

    @app.get(f"{API}/users/{{user_id}}", response_model=UserView, responses=PROBLEMS, tags=["read models"])
    def get_user(user_id: LedgerIdPath, _role: Role) -> UserView:
        user = reads.user(user_id)
        if user is None:
            raise HTTPException(404, f"user {user_id} is not in the read model")
        return _user(user)

    @app.get(f"{API}/accounts", response_model=list[AccountView], responses=PROBLEMS, tags=["read models"])
    def list_accounts(_role: Role, limit: Limit = 100, offset: Offset = 0) -> list[AccountView]:
        return [_account(a) for a in reads.accounts(limit, offset)]

    @app.get(f"{API}/accounts/{{account_id}}", response_model=AccountView, responses=PROBLEMS,
             tags=["read models"])
    def get_account(account_id: LedgerIdPath, _role: Role) -> AccountView:
        account = reads.account(account_id)
        if account is None:
            raise HTTPException(404, f"account {account_id} is not in the read model")
        return _account(account)

    @app.get(f"{API}/pools", response_model=list[PoolView], responses=PROBLEMS, tags=["read models"])
    def list_pools(_role: Role) -> list[PoolView]:
        return [PoolView(poolId=p.pool_id, balance=p.balance, minted=p.minted, updatedAt=p.updated_at)
                for p in reads.pools()]

    @app.get(f"{API}/system/status", response_model=SystemStatusView, responses=PROBLEMS, tags=["read models"])
    def system_status(_role: Role) -> SystemStatusView:
        s = reads.system_status()
        return SystemStatusView(bootstrapped=s.bootstrapped, userCount=s.user_count, countries=s.countries,
                                pools=s.pools, checkpointBlock=s.checkpoint_block,
                                checkpointTxIndex=s.checkpoint_tx_index, outbox=outbox.counts())

    @app.get("/healthz", response_model=Health, tags=["operations"])
    def healthz() -> Health:
        """The process is up (no dependency checks)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, responses={503: PROBLEM}, tags=["operations"])
    def readyz() -> Response | Health:
        """The database is reachable and migrated to the newest schema."""
        if not is_reachable(engine):
            return problem(503, "database unreachable", title="Not ready", checks={"database": "unreachable"})
        revision, head = current_revision(engine), head_revision()
        if revision != head:
            return problem(503, f"database schema at {revision}, expected {head}", title="Not ready",
                           checks={"database": "ok", "schema": f"{revision} != {head}"})
        return Health(status="ok", checks={"database": "ok", "schema": head})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    def metrics_endpoint() -> Response:
        metrics.db_pool.observe(engine)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _exact_uint64_bounds_in_openapi(app: FastAPI) -> None:
    """FastAPI's OpenAPI model holds numeric bounds as floats, which turns 2**64-1 into 2**64; put it back."""
    original = app.openapi

    def fix(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in {"maximum", "minimum"} and isinstance(value, float) and value == float(UINT64_MAX):
                    node[key] = UINT64_MAX
                else:
                    fix(value)
        elif isinstance(node, list):
            for item in node:
                fix(item)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            fix(original())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to adjust the schema


def _user(u: object) -> UserView:
    from gxlib.backend.models import UserProfile

    assert isinstance(u, UserProfile)
    return UserView(userId=u.user_id, countryCode=u.country_code, displayName=u.display_name,
                    userNumber=u.user_number, genesisDistributed=u.genesis_distributed,
                    genesisAmount=u.genesis_amount, genesisTier=u.genesis_tier, createdAt=u.created_at)


def _account(a: object) -> AccountView:
    from gxlib.backend.models import Account

    assert isinstance(a, Account)
    return AccountView(accountId=a.account_id, balance=a.balance, balanceCoins=a.balance // PRECISION,
                       updatedAt=a.updated_at)
