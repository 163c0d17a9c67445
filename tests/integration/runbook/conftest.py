"""Runbook tests start real Jupyter kernels (no Fabric network): the project's kernel spec must be installed.

`make` installs it (`gx runbook kernel`); this fixture does the same when it is missing, so a fresh clone's
`pytest` works too.
"""

from __future__ import annotations

import pytest

from gxlib.runbook.kernel import install_kernel, kernel_python
from gxlib.runbook.settings import KERNEL_NAME


@pytest.fixture(scope="session")
def gx_kernel() -> str:
    if kernel_python(KERNEL_NAME) is None:
        install_kernel(KERNEL_NAME)
    assert kernel_python(KERNEL_NAME) is not None
    return KERNEL_NAME
