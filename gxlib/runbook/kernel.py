"""The Jupyter kernel runbooks execute on: this virtualenv's python, as the kernel spec ``gxlib``.

`install_kernel()` (`gx runbook kernel`, run by `make`) writes the spec into ``<sys.prefix>/share/jupyter/kernels``,
so it lives and dies with the virtualenv and needs no per-user state; JupyterLab, papermill and nbval started
from the virtualenv all find it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gxlib.runbook.settings import KERNEL_NAME

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

Manager = TypeVar("Manager")


def kernel_python(name: str = KERNEL_NAME) -> str | None:
    """The python executable of the installed kernel spec ``name``, or ``None`` if it is not installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return None
    return spec.argv[0] if spec.argv else None


def install_kernel(name: str = KERNEL_NAME, *, display_name: str = "Python 3.11 (gxlib)") -> Path:
    """Install (or refresh) the kernel spec ``name`` for this interpreter into ``sys.prefix``; idempotent."""
    from ipykernel.kernelspec import install

    return Path(install(kernel_name=name, display_name=display_name, prefix=sys.prefix))


def with_ipc_transport(base: type[Manager]) -> type[Manager]:
    """``base`` (a jupyter_client kernel manager class) whose kernels talk over Unix sockets, not loopback TCP.

    A runbook's kernel is a child process on this machine; over TCP ipykernel warns about it in the operator's
    output ("Kernel is running over TCP without encryption"). The sockets go in a private directory of their own
    with a short path (a socket path is limited to ~100 bytes, which a Jupyter runtime directory under a deep
    $HOME or tmp dir can exceed), removed with the kernel.
    """

    class _IpcKernelManager(base):  # type: ignore[valid-type, misc]
        def __init__(self, **kw: Any) -> None:
            ipc_dir = None
            if kw.setdefault("transport", "ipc") == "ipc" and "ip" not in kw:
                ipc_dir = tempfile.mkdtemp(prefix="gx-kernel-")
                kw["ip"] = os.path.join(ipc_dir, "k")
            super().__init__(**kw)
            self._gx_ipc_dir = ipc_dir

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            # jupyter_client removes the sockets; the directory made for them goes with the kernel.
            await super()._async_cleanup_resources(restart=restart)
            if not restart and self._gx_ipc_dir is not None:
                shutil.rmtree(self._gx_ipc_dir, ignore_errors=True)

    return _IpcKernelManager


def kernel_manager_with_environment(extra_env: Mapping[str, str]) -> type[AsyncKernelManager]:
    """A kernel manager class whose kernels start with ``extra_env`` added to this process's environment.

    This is how a run hands the kernel its record directory and its secrets without writing them into the
    notebook and without touching ``os.environ`` of the caller. The kernel talks over Unix sockets
    (``with_ipc_transport``).
    """
    from jupyter_client.manager import AsyncKernelManager

    env = dict(extra_env)

    class _GxKernelManager(with_ipc_transport(AsyncKernelManager)):  # type: ignore[misc]
        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = {**os.environ, **kw.get("env", {}), **env}
            await super().start_kernel(**kw)

    return _GxKernelManager
