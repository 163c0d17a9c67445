"""The record of a run: ``<runs_dir>/<UTC timestamp>-<runbook>/`` with the executed notebook and its HTML.

Secrets never reach the disk. They are not injected into the notebook (the kernel gets them through its
environment), and every write of the executed notebook — papermill saves it after each cell — goes through
``RecordIO``, which replaces each secret value with ``***`` in every string of the document (sources, outputs,
tracebacks, metadata) before the file is written. The HTML is rendered from the redacted notebook.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from gxlib.config import Environment
from gxlib.platform.connect import local_api_token
from gxlib.runbook.parameters import RunbookParameters

MASK = "***"
SCHEME = "gxrecord://"


def new_record_dir(runs_dir: Path, runbook: str, when: datetime) -> Path:
    """Create ``runs_dir/<YYYYmmddTHHMMSSZ>-<runbook>`` (``-2``, ``-3`` … if that second is taken)."""
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    runs_dir.mkdir(parents=True, exist_ok=True)
    for n in itertools.count(1):
        path = runs_dir / (f"{stamp}-{runbook}" if n == 1 else f"{stamp}-{runbook}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def run_secrets(params: RunbookParameters) -> list[str]:
    """What a run's record must never contain: its secret parameters, and on the local profile the admin token
    that the run may read from the devnet's token file when no token is given."""
    found = params.secret_values()
    if params.env is Environment.LOCAL and params.secret_fields():
        token = local_api_token(getattr(params, "devnet_state_dir", None))
        if token:
            found.append(token)
    return found


class Redactor:
    """Replaces each secret value with ``***`` wherever it occurs inside a string."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        return value

    def document(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.document(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.document(v) for v in value]
        return value


def write_atomically(path: Path, text: str) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a record is redacted and meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RecordIO:
    """A papermill I/O handler for ``gxrecord:///abs/path.ipynb``: writes the notebook there, redacted.

    A path is served only while its run is registered (``open``/``close``), with that run's redactor.
    """

    def __init__(self) -> None:
        self._redactors: dict[str, Redactor] = {}
        self._lock = threading.Lock()

    @staticmethod
    def url(path: Path) -> str:
        return SCHEME + str(path)

    @staticmethod
    def path(url: str) -> Path:
        return Path(url.removeprefix(SCHEME))

    def open(self, path: Path, redactor: Redactor) -> str:
        with self._lock:
            self._redactors[str(path)] = redactor
        return self.url(path)

    def close(self, path: Path) -> None:
        with self._lock:
            self._redactors.pop(str(path), None)

    def _redactor(self, url: str) -> Redactor:
        with self._lock:
            try:
                return self._redactors[str(self.path(url))]
            except KeyError:
                raise PermissionError(f"{url} is not the record of a run in progress") from None

    # --- papermill's handler interface ---
    def write(self, buf: str, url: str) -> None:
        redactor = self._redactor(url)
        document = redactor.document(json.loads(buf))
        papermill = document.get("metadata", {}).get("papermill")
        if isinstance(papermill, dict):
            papermill["output_path"] = str(self.path(url))
        write_atomically(self.path(url), json.dumps(document, indent=1, ensure_ascii=False) + "\n")

    def read(self, url: str) -> str:
        return self.path(url).read_text(encoding="utf-8")

    def listdir(self, url: str) -> list[str]:
        return [str(p) for p in self.path(url).iterdir()]

    def pretty_path(self, url: str) -> str:
        return str(self.path(url))


_record_io: RecordIO | None = None
_registration_lock = threading.Lock()


def record_io() -> RecordIO:
    """The handler, registered with papermill on first use (papermill's handler registry is process-wide)."""
    global _record_io
    with _registration_lock:
        if _record_io is None:
            from papermill.iorw import papermill_io

            _record_io = RecordIO()
            papermill_io.register(SCHEME, _record_io)
        return _record_io


PLOTLY_MIME = "application/vnd.plotly.v1+json"
# An output marked so in its metadata acts in the live notebook only (e.g. a script that saves it) and is left
# out of the HTML record.
LIVE_ONLY = "gx_live_only"


def drop_live_only_outputs(node: Any) -> None:
    for cell in node.get("cells", []):
        if "outputs" in cell:
            cell["outputs"] = [output for output in cell["outputs"]
                               if not output.get("metadata", {}).get(LIVE_ONLY)]


def charts_as_html(node: Any) -> int:
    """Give every plotly output of the notebook ``node`` an ``text/html`` rendering, in place; returns how many.

    In JupyterLab a chart is the plotly MIME bundle alone, which nbconvert cannot show: the HTML record would
    lose it. plotly.js is inlined once, with the first chart, so the record still opens without internet.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    charts = 0
    for cell in node.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME not in data or "text/html" in data:
                continue
            figure = go.Figure(data[PLOTLY_MIME], skip_invalid=True)
            data["text/html"] = pio.to_html(figure, full_html=False, include_plotlyjs=charts == 0,
                                            div_id=f"gx-chart-{charts + 1}", default_height="450px",
                                            validate=False)
            charts += 1
    return charts


def write_html(notebook: Path, html: Path, redactor: Redactor) -> None:
    """Render the (already redacted) executed notebook to self-contained HTML, charts included (see
    ``charts_as_html``); redact once more as a guard."""
    import nbformat
    from nbconvert import HTMLExporter

    node = nbformat.read(notebook, as_version=4)
    drop_live_only_outputs(node)
    charts_as_html(node)
    body, _ = HTMLExporter().from_notebook_node(node)
    write_atomically(html, redactor.text(body))
