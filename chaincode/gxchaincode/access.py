"""Access control (SPEC §2.1): ``require_role(ctx, role)``.

Who is a super admin (role ``gx_super_admin``):

* After BootstrapSystem the ledger holds the *trusted issuer MSPs* (``TrustedIssuerMSPs`` key; BootstrapSystem
  records the bootstrapping caller's MSP, AdminContract:SetTrustedIssuerMSPs changes it). A caller is a super
  admin only if its MSP is one of them AND it either carries the Fabric CA attribute ``gx_super_admin=true`` or
  is an MSP admin (NodeOU ``admin``, the fallback for cryptogen-style networks). Another organisation's admin is
  not a super admin — and neither is another organisation's attribute holder: every organisation runs its own CA
  and its registrar can write any attribute, so an attribute is only as trustworthy as the MSP that issued it.
* Before BootstrapSystem (no trusted issuers recorded yet) the channel is all there is to trust: the attribute
  holder of any channel MSP holds the role, and the MSP-admin fallback counts for BootstrapSystem only (which then
  records the caller's MSP as the one trusted issuer). So the first bootstrap decides the trusted organisation:
  bootstrap right after the first deployment.

Other roles are granted by their CA attribute only.
"""

from __future__ import annotations

from gxchaincode.ledger import read_trusted_issuers
from gxshim import ChaincodeError, Context

SUPER_ADMIN_ROLE = "gx_super_admin"
# Fabric CA writes this attribute value for a granted role.
ROLE_GRANTED = "true"
# Fallback for cryptogen-style networks: an MSP admin (NodeOU "admin") of a trusted issuer MSP holds the role.
ADMIN_OU = "admin"


class AccessDeniedError(ChaincodeError):
    """The caller lacks the role; the message names the role, the rule and the caller."""

    status = 403


def _holds_credential(ctx: Context, role: str, *, bootstrapping: bool, trusted: list[str] | None) -> bool:
    caller = ctx.client_identity
    attribute = caller.attribute(role) == ROLE_GRANTED
    if role != SUPER_ADMIN_ROLE:
        return attribute
    if trusted is None:
        return attribute or (bootstrapping and ADMIN_OU in caller.ous)
    return attribute or ADMIN_OU in caller.ous


def has_role(ctx: Context, role: str, *, bootstrapping: bool = False) -> bool:
    """Whether the caller holds ``role`` (see the module docstring). ``bootstrapping``: the action is
    BootstrapSystem, the one action an MSP admin may take before trusted issuers are recorded."""
    trusted = read_trusted_issuers(ctx) if role == SUPER_ADMIN_ROLE else None
    if not _holds_credential(ctx, role, bootstrapping=bootstrapping, trusted=trusted):
        return False
    return trusted is None or ctx.client_identity.msp_id in trusted


def require_role(ctx: Context, role: str, action: str, *, bootstrapping: bool = False) -> None:
    """Refuse ``action`` unless the caller has ``role``; the error names the role and the rule it failed."""
    if has_role(ctx, role, bootstrapping=bootstrapping):
        return
    caller = ctx.client_identity
    who = f"caller {caller.common_name or caller.id} of {caller.msp_id}"
    if role != SUPER_ADMIN_ROLE:
        raise AccessDeniedError(f"access denied: {action} requires role {role} (certificate attribute {role}=true); "
                                f"{who} lacks it")
    trusted = read_trusted_issuers(ctx)
    if trusted is None:
        raise AccessDeniedError(
            f"access denied: {action} requires role {role} (certificate attribute {role}=true; before "
            f"BootstrapSystem an MSP admin may only bootstrap); {who} has neither")
    credential = _holds_credential(ctx, role, bootstrapping=bootstrapping, trusted=trusted)
    reason = (f"{caller.msp_id} is not a trusted issuer MSP" if credential
              else "it holds neither the attribute nor the admin role")
    raise AccessDeniedError(
        f"access denied: {action} requires role {role} (certificate attribute {role}=true or an MSP admin) "
        f"of a trusted issuer MSP ({', '.join(trusted)}); {who}: {reason}")


def caller_id(ctx: Context) -> str:
    """The caller's stable identity string (``x509::subject::issuer``), used as an owner."""
    return ctx.client_identity.id
