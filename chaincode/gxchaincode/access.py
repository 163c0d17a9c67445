"""Access control (SPEC §2.1): ``require_role(ctx, role)``."""

from __future__ import annotations

from gxshim import ChaincodeError, Context

SUPER_ADMIN_ROLE = "gx_super_admin"
# Fabric CA writes this attribute value for a granted role.
ROLE_GRANTED = "true"
# Fallback for cryptogen-style networks: an MSP admin (NodeOU "admin") holds the super-admin role.
ADMIN_OU = "admin"


class AccessDeniedError(ChaincodeError):
    """The caller lacks the role; the message names the role and the caller."""

    status = 403


def has_role(ctx: Context, role: str) -> bool:
    caller = ctx.client_identity
    if caller.attribute(role) == ROLE_GRANTED:
        return True
    return role == SUPER_ADMIN_ROLE and ADMIN_OU in caller.ous


def require_role(ctx: Context, role: str, action: str) -> None:
    """Refuse ``action`` unless the caller has ``role`` (CA attribute ``role=true``, or the admin NodeOU)."""
    if not has_role(ctx, role):
        caller = ctx.client_identity
        raise AccessDeniedError(
            f"access denied: {action} requires role {role} (certificate attribute {role}=true or an MSP admin); "
            f"caller {caller.common_name or caller.id} of {caller.msp_id} has neither"
        )


def caller_id(ctx: Context) -> str:
    """The caller's stable identity string (``x509::subject::issuer``), used as an owner."""
    return ctx.client_identity.id
