"""JupyterLab for runbooks (`make lab`, `gx runbook lab`, `gx runbook open`): loopback only, with a token, also as root.

The lab's contents manager (``RunbookContentsManager``) keeps the templates in notebooks/ as they are: they open
read-only (JupyterLab neither autosaves them nor marks them for saving) and a save is refused, naming
`gx runbook open`. Checkpoints go to the user's state directory (``RecordCheckpoints``), so no
``.ipynb_checkpoints/`` appears in notebooks/ or in a run's record. Every save of an interactive copy
(``gxlib.runbook.interactive``) renders that run's HTML record and ``run.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_client.ioloop import AsyncIOLoopKernelManager
from jupyter_server.services.contents.filecheckpoints import AsyncFileCheckpoints
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web
from tornado.escape import url_escape
from traitlets import Unicode

from gxlib.runbook.kernel import with_ipc_transport
from gxlib.runbook.settings import RunbookSettings

DEFAULT_PORT = 8888
TEMPLATE_READ_ONLY = ("{path} is a runbook template and stays unchanged; run it from a copy: "
                      "`gx runbook open NAME -p KEY VALUE` (its record goes to runs/)")


def _checkpoint_store() -> str:
    import platformdirs

    return str(Path(platformdirs.user_state_dir("gxlib")) / "lab-checkpoints")



def _url_path(path: str) -> str:
    """``path`` (a notebook's, relative to the lab's root) as the path part of a lab URL, each segment quoted."""
    return "/".join(url_escape(segment, plus=False) for segment in path.split("/"))

class IpcKernelManager(with_ipc_transport(AsyncIOLoopKernelManager)):  # type: ignore[misc]
    """The lab's kernels on Unix sockets, as under `gx runbook run` (no TCP warning in the lab's output)."""


class RecordCheckpoints(AsyncFileCheckpoints):
    """File checkpoints kept under ``store`` (mirroring the lab's paths), never next to the notebooks."""

    store = Unicode(config=True, help="where checkpoints are kept").tag(config=True)

    def checkpoint_path(self, checkpoint_id: str, path: str) -> str:
        parent, name = ("/" + path.strip("/")).rsplit("/", 1)
        basename, ext = os.path.splitext(name)
        directory = os.path.join(self.store or _checkpoint_store(), parent.strip("/"))
        with self.perm_to_403():
            os.makedirs(directory, mode=0o700, exist_ok=True)
        return os.path.join(directory, f"{basename}-{checkpoint_id}{ext}")


class RunbookContentsManager(AsyncLargeFileManager):
    """The lab's files, with the runbook templates read-only and interactive runs recorded on save."""

    templates_dir = Unicode("", help="the runbook templates (notebooks/): never written").tag(config=True)

    def _is_template(self, path: str) -> bool:
        if not self.templates_dir:
            return False
        target = Path(self._get_os_path(path.strip("/"))).resolve()
        templates = Path(self.templates_dir).resolve()
        return target == templates or templates in target.parents

    def _refuse(self, path: str) -> None:
        if self._is_template(path):
            raise web.HTTPError(403, TEMPLATE_READ_ONLY.format(path=path))

    # jupyter_server types ``get`` differently per base class (sync and async managers); this is the async one.
    async def get(self, path: str, content: bool = True, type: str | None = None,  # type: ignore[override]
                  format: str | None = None, **kwargs: Any) -> dict[str, Any]:
        model: dict[str, Any] = await super().get(path, content=content, type=type, format=format, **kwargs)
        if self._is_template(path):
            model["writable"] = False
        return model

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        self._refuse(path)
        saved: dict[str, Any] = await super().save(model, path)
        if saved.get("type") == "notebook":
            from gxlib.runbook.interactive import write_record

            try:
                write_record(Path(self._get_os_path(path.strip("/"))))
            except Exception as exc:  # the notebook is saved; say why the record is not, and carry on
                self.log.error("gx: the record of %s could not be written: %s", path, exc)
        return saved

    async def delete_file(self, path: str) -> None:
        self._refuse(path)
        await super().delete_file(path)

    async def rename_file(self, old_path: str, new_path: str) -> None:
        self._refuse(old_path)
        self._refuse(new_path)
        await super().rename_file(old_path, new_path)

    async def create_checkpoint(self, path: str) -> dict[str, Any]:
        if self._is_template(path):  # nothing is ever saved over a template: nothing to go back to
            model = await super().get(path, content=False)
            return {"id": "checkpoint", "last_modified": model["last_modified"]}
        result: dict[str, Any] = await super().create_checkpoint(path)
        return result


def lab_root(settings: RunbookSettings) -> Path:
    """The directory the lab serves: the checkout (notebooks/ and runs/), or runs/ alone when they share nothing
    narrower than the home directory."""
    notebooks, runs = settings.notebooks_dir.resolve(), settings.runs_dir.resolve()
    root = Path(os.path.commonpath([notebooks, runs]))
    return runs if root in (Path("/"), Path.home()) else root


@dataclass(frozen=True)
class Lab:
    """How to start a lab and where the operator opens it."""

    root: Path
    port: int
    token: str
    open_path: str | None = None  # relative to root

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def url(self) -> str:
        return lab_url(self.base_url, self.token, self.open_path)

    def command(self, settings: RunbookSettings) -> list[str]:
        args = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            "--ServerApp.answer_yes=True",  # Ctrl-C stops it, without a y/n question
            f"--ServerApp.root_dir={self.root}",
            f"--ServerApp.contents_manager_class={RunbookContentsManager.__module__}.RunbookContentsManager",
            f"--RunbookContentsManager.templates_dir={settings.notebooks_dir.resolve()}",
            f"--ContentsManager.checkpoints_class={RecordCheckpoints.__module__}.RecordCheckpoints",
            f"--RecordCheckpoints.store={_checkpoint_store()}",
            f"--MappingKernelManager.kernel_manager_class={IpcKernelManager.__module__}.IpcKernelManager",
            # Lets the cell that finishes a run save its notebook (gxlib.runbook.interactive.SAVE_SCRIPT).
            "--LabApp.expose_app_in_browser=True",
            # An operator's tool on loopback: no news feed or update check from the internet, no pop-up asking.
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if self.open_path:
            args.append(f"--ServerApp.default_url=/lab/tree/{_url_path(self.open_path)}")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")  # JupyterLab refuses root otherwise; it listens on loopback only
        return args

    def environment(self) -> dict[str, str]:
        """The lab's environment: the token (not on the command line, where `ps` would show it) and the page
        configuration that turns off JupyterLab's "get official Jupyter news?" toast (written on first use)."""
        config_path = [str(lab_page_config_dir()), *filter(None, os.environ.get("JUPYTER_CONFIG_PATH", "").split(
            os.pathsep))]
        return {**os.environ, "JUPYTER_TOKEN": self.token, "JUPYTER_CONFIG_PATH": os.pathsep.join(config_path)}


# The announcements plugin asks every new profile whether to fetch news from the internet; an operator's lab on
# loopback has no news feed (--LabApp.news_url=None), so the question is only noise.
LAB_PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


def lab_page_config_dir() -> Path:
    """A Jupyter config directory holding ``labconfig/page_config.json`` = LAB_PAGE_CONFIG (see Lab.environment)."""
    import platformdirs

    directory = Path(platformdirs.user_state_dir("gxlib")) / "lab-config"
    page_config = directory / "labconfig" / "page_config.json"
    text = json.dumps(LAB_PAGE_CONFIG, indent=2) + "\n"
    if not page_config.is_file() or page_config.read_text() != text:
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(text)
    return directory


def lab_url(base_url: str, token: str, open_path: str | None = None) -> str:
    where = f"lab/tree/{_url_path(open_path)}" if open_path else "lab"
    return f"{base_url.rstrip('/')}/{where}?token={token}"


def new_lab(settings: RunbookSettings, *, port: int = DEFAULT_PORT, open_path: Path | None = None) -> Lab:
    root = lab_root(settings)
    relative = str(open_path.resolve().relative_to(root)) if open_path is not None else None
    return Lab(root, port, secrets.token_hex(24), relative)


def running_labs() -> Iterator[dict[str, Any]]:
    """The Jupyter servers of this user that are running (as jupyter_server lists them)."""
    from jupyter_server.serverapp import list_running_servers

    yield from list_running_servers()


def running_lab_for(path: Path) -> str | None:
    """The URL that opens ``path`` in a running lab serving it (with its token), if there is one."""
    target = path.resolve()
    for server in running_labs():
        root = Path(server.get("root_dir") or server.get("notebook_dir") or "/").resolve()
        if root == target or root in target.parents:
            return lab_url(str(server["url"]), str(server.get("token", "")), str(target.relative_to(root)))
    return None
