"""The optional dependencies (``pip install 'gxlib[runbooks]'``) and the error that names them when missing.

The services (``gx serve api|submitter|projector``, the chaincode server) need only gxlib's main dependencies, so
the container images install gxlib without extras. The runbooks, reports and the Kubernetes platform layer need
the ``runbooks`` extra (Jupyter, papermill, pandas, plotly, the Prometheus and Kubernetes clients); a developer's
venv (``make setup``: ``.[dev]``) has it. A command that needs it fails with :class:`MissingExtra`, not a bare
ImportError:

    try:
        from gxlib.runbook.cli import runbook
    except ModuleNotFoundError as exc:
        runbook = needs_extra_command("runbook", exc)
"""

from __future__ import annotations

from typing import NoReturn

import click

from gxlib.errors import GxError

RUNBOOKS_EXTRA = "runbooks"
# Top-level module → the distribution of the `runbooks` extra that provides it (pyproject.toml keeps the list;
# tests/unit/test_extras.py checks the two agree).
RUNBOOKS_MODULES = {
    "ipykernel": "ipykernel",
    "jupyter_client": "jupyter-client",
    "nbconvert": "nbconvert",
    "nbformat": "nbformat",
    "papermill": "papermill",
    "pandas": "pandas",
    "plotly": "plotly",
    "prometheus_api_client": "prometheus-api-client",
    "kubernetes": "kubernetes",
}


class MissingExtra(GxError):
    """A feature needs an optional dependency group that is not installed; ``extra`` names the group."""

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        super().__init__(
            f"{feature} needs gxlib's optional dependencies [{extra}] (missing: {missing})",
            hint=f"install them: pip install 'gxlib[{extra}]' (or `make setup` in a checkout); the container "
            "images leave them out on purpose",
        )
        self.feature = feature
        self.extra = extra
        self.missing = missing


def missing_extra(exc: ModuleNotFoundError, feature: str) -> MissingExtra | None:
    """The :class:`MissingExtra` that ``exc`` means, or None when the missing module is not an extra's."""
    top = (exc.name or "").split(".")[0]
    if top in RUNBOOKS_MODULES:
        return MissingExtra(feature, RUNBOOKS_EXTRA, RUNBOOKS_MODULES[top])
    return None


def needs_extra_command(name: str, exc: ModuleNotFoundError) -> click.Command:
    """A stand-in for the command group ``name`` that could not be imported: listed in ``gx --help``, and any use
    of it fails with :class:`MissingExtra`. An import error that no extra explains is raised again."""
    error = missing_extra(exc, f"`gx {name}`")
    if error is None:
        raise exc

    def _fail() -> NoReturn:
        raise error

    return click.Command(
        name,
        callback=_fail,
        help=f"(not installed: needs pip install 'gxlib[{error.extra}]')",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
    )
