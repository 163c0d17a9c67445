"""Build the Kubernetes tools from the Go module proxy and cache them outside the repo.

Two sources, each pinned:

* ``k8s_module/go.mod`` — a wrapper module that requires ``k8s.io/kubernetes`` with every staging module at the
  matching ``v0.X.Y`` (k8s.io/kubernetes replaces them with local paths, so ``go install …@version`` is refused)
  plus etcd's server and kwok, and names their programs with ``tool`` directives. ``go build`` of a tool
  package inside it gives kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok (the control
  plane) and kubelet, kube-proxy and kubectl (a real node, ``gx k8s up``).
* ``kustomize`` — ``go install sigs.k8s.io/kustomize/kustomize/v5@<version>`` (its module has no replace
  directives), into the same cache entry.

The cache lives at ``<cache_root>/k8s-<kubernetes version>/bin``. ``manifest.json`` records each tool with the
digest of what pinned it and its build time; a tool whose binary or record is missing (or pinned differently)
is built, the rest are kept. A program of the wrapper module also counts as built when every module version its
binary was linked from (``go version -m``) is still the one go.mod requires: adding a tool line to go.mod then
rebuilds only the new tool, not the whole control plane. A lock file serialises builds between processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gxlib.devnet.binaries import go_version
from gxlib.errors import GxError
from gxlib.filelock import exclusive_lock
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.progress import Progress

KUBERNETES_MODULE = "k8s.io/kubernetes"
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
# v5.8.3 needs Go 1.27; v5.8.2 is the newest that builds with Go 1.26.
KUSTOMIZE_VERSION = "v5.8.2"

_PACKAGE_DIR = Path(__file__).resolve().parent
K8S_MODULE_DIR = _PACKAGE_DIR / "k8s_module"


@dataclass(frozen=True)
class Tool:
    """One program: its binary name and the Go package it is built from."""

    name: str
    package: str

    @property
    def from_wrapper_module(self) -> bool:
        return self.name != "kustomize"


ETCD = Tool("etcd", "go.etcd.io/etcd/server/v3")
KUBE_APISERVER = Tool("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver")
KUBE_CONTROLLER_MANAGER = Tool("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager")
KUBE_SCHEDULER = Tool("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler")
KWOK = Tool("kwok", "sigs.k8s.io/kwok/cmd/kwok")
KUBELET = Tool("kubelet", "k8s.io/kubernetes/cmd/kubelet")
KUBE_PROXY = Tool("kube-proxy", "k8s.io/kubernetes/cmd/kube-proxy")
KUBECTL = Tool("kubectl", "k8s.io/kubernetes/cmd/kubectl")
KUSTOMIZE = Tool("kustomize", f"{KUSTOMIZE_MODULE}@{KUSTOMIZE_VERSION}")
CONTROL_PLANE_TOOLS: tuple[Tool, ...] = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBE_SCHEDULER, KWOK)
# What a real node adds to the control plane (``gx k8s up``).
NODE_TOOLS: tuple[Tool, ...] = (KUBELET, KUBE_PROXY, KUBECTL)
WRAPPER_TOOLS: tuple[Tool, ...] = (*CONTROL_PLANE_TOOLS, *NODE_TOOLS)
TOOLS: tuple[Tool, ...] = (KUSTOMIZE, *WRAPPER_TOOLS)


class K8sBuildError(GxError):
    """Building one of the Kubernetes tools failed; the message carries the command and the log's tail."""

    def __init__(self, tool: str, command: list[str], log_tail: str, log_file: Path) -> None:
        super().__init__(
            f"building {tool} failed: `{' '.join(command)}`; last lines of {log_file}:\n{log_tail}",
            hint="check that the Go module proxy is reachable (GOPROXY) and serves the pinned versions, "
            "then retry `gx k8s build`",
        )
        self.tool = tool
        self.command = command
        self.log_file = log_file


def kubernetes_version() -> str:
    """The k8s.io/kubernetes version that ``k8s_module/go.mod`` requires (e.g. ``v1.36.3``)."""
    text = (K8S_MODULE_DIR / "go.mod").read_text()
    match = re.search(rf"^\s*{re.escape(KUBERNETES_MODULE)} (v\S+)", text, re.MULTILINE)
    if not match:
        raise GxError(f"{K8S_MODULE_DIR / 'go.mod'} does not require {KUBERNETES_MODULE}")
    return match.group(1)


def pin_digest(tool: Tool) -> str:
    """What pins ``tool``: go.mod + go.sum of the wrapper module, or kustomize's version."""
    digest = hashlib.sha256()
    if tool.from_wrapper_module:
        for name in ("go.mod", "go.sum"):
            digest.update((K8S_MODULE_DIR / name).read_bytes())
    else:
        digest.update(tool.package.encode())
    return digest.hexdigest()[:16]


def required_modules() -> dict[str, str]:
    """Module path → version, as ``k8s_module/go.mod`` requires them (direct and indirect)."""
    text = (K8S_MODULE_DIR / "go.mod").read_text()
    return dict(re.findall(r"^\s+(\S+) (v\S+)(?: // indirect)?$", text, re.MULTILINE))


def parse_build_modules(version_m_output: str) -> dict[str, str]:
    """Module path → version from ``go version -m`` output (the ``mod`` and ``dep`` lines; replacements skipped)."""
    modules: dict[str, str] = {}
    for line in version_m_output.splitlines():
        parts = line.strip().split("\t")
        if len(parts) >= 3 and parts[0] in ("mod", "dep"):
            modules[parts[1]] = parts[2]
    return modules


def linked_modules(binary: Path) -> dict[str, str] | None:
    """The module versions ``binary`` was linked from, or None when they cannot be read (no Go, no build info)."""
    go = shutil.which("go")
    if go is None:
        return None
    proc = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True, check=False)
    modules = parse_build_modules(proc.stdout) if proc.returncode == 0 else {}
    return modules or None


def modules_still_pinned(linked: dict[str, str], required: dict[str, str]) -> bool:
    """Whether every module a binary was linked from is still required at the same version."""
    return all(required.get(module) == version for module, version in linked.items())


@dataclass(frozen=True)
class K8sInstall:
    """Paths of one cached build of the Kubernetes tools."""

    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def manifest_file(self) -> Path:
        return self.root / "manifest.json"

    @property
    def build_log(self) -> Path:
        return self.root / "build.log"

    @property
    def lock_file(self) -> Path:
        return self.root.parent / f"{self.root.name}.lock"

    def binary(self, tool: Tool | str) -> Path:
        return self.bin_dir / (tool.name if isinstance(tool, Tool) else tool)

    def manifest(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.manifest_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        tools = data.get("tools", {}) if isinstance(data, dict) else {}
        return tools if isinstance(tools, dict) else {}

    def has(self, tool: Tool) -> bool:
        record = self.manifest().get(tool.name)
        if not record or not self.binary(tool).exists():
            return False
        if record.get("pin") == pin_digest(tool):
            return True
        if not tool.from_wrapper_module:
            return False
        linked = linked_modules(self.binary(tool))
        return linked is not None and modules_still_pinned(linked, required_modules())

    def missing(self, tools: Iterable[Tool]) -> list[Tool]:
        return [tool for tool in tools if not self.has(tool)]

    def _record(self, tool: Tool, seconds: float) -> None:
        tools = self.manifest()
        tools[tool.name] = {"package": tool.package, "pin": pin_digest(tool), "build_seconds": round(seconds, 1),
                            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        document = {"kubernetes_version": kubernetes_version(), "kustomize_version": KUSTOMIZE_VERSION,
                    "tools": tools}
        tmp = self.manifest_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(document, indent=2))
        tmp.replace(self.manifest_file)


def k8s_install(settings: K8sBuildSettings) -> K8sInstall:
    return K8sInstall(settings.cache_root / f"k8s-{kubernetes_version()}")


def _go_env(gobin: Path, tool: Tool) -> dict[str, str]:
    env = dict(os.environ)
    env["GOBIN"] = str(gobin)
    # Inside the wrapper module go.sum must already pin everything; `go install pkg@version` takes no -mod.
    flags = ("-mod=readonly", "-buildvcs=false") if tool.from_wrapper_module else ("-buildvcs=false",)
    env["GOFLAGS"] = " ".join(f for f in (env.get("GOFLAGS", ""), *flags) if f)
    # Static binaries: the control plane needs no cgo, and it keeps the build independent of system headers.
    env["CGO_ENABLED"] = "0"
    return env


def _version_ldflags() -> str:
    """Stamp the release into the Kubernetes binaries (a plain `go build` reports v0.0.0-master)."""
    version = kubernetes_version()
    major, minor = version.lstrip("v").split(".")[:2]
    base = "k8s.io/component-base/version"
    return f"-X {base}.gitVersion={version} -X {base}.gitMajor={major} -X {base}.gitMinor={minor}"


def _build_command(go: str, tool: Tool, install: K8sInstall) -> tuple[list[str], Path]:
    if tool.from_wrapper_module:
        ldflags = _version_ldflags() if tool.package.startswith(KUBERNETES_MODULE) else ""
        return [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(install.binary(tool)), tool.package], \
            K8S_MODULE_DIR
    return [go, "install", "-trimpath", tool.package], install.root


def ensure_k8s_tools(settings: K8sBuildSettings, tools: Iterable[Tool] = TOOLS,
                     progress: Progress | None = None) -> K8sInstall:
    """The cache entry with ``tools`` built, building whichever are missing first."""
    install = k8s_install(settings)
    wanted = list(tools)
    if not install.missing(wanted):
        return install
    return build_k8s_tools(settings, wanted, progress)


def build_k8s_tools(settings: K8sBuildSettings, tools: Iterable[Tool] = TOOLS, progress: Progress | None = None,
                    *, force: bool = False) -> K8sInstall:
    """Build ``tools`` into the cache (those already there are kept unless ``force``)."""
    progress = progress or Progress()
    install = k8s_install(settings)
    wanted = list(tools)
    major, minor = go_version(settings.go_binary)
    go = shutil.which(settings.go_binary) or settings.go_binary
    with exclusive_lock(install.lock_file):
        todo = wanted if force else install.missing(wanted)
        if not todo:
            progress.info(f"Kubernetes tools already built in {install.bin_dir}")
            return install
        install.bin_dir.mkdir(parents=True, exist_ok=True)
        progress.info(
            f"Building {', '.join(t.name for t in todo)} (Kubernetes {kubernetes_version()}, kustomize "
            f"{KUSTOMIZE_VERSION}) with Go {major}.{minor} into {install.bin_dir}; log: {install.build_log}"
        )
        for index, tool in enumerate(todo, 1):
            command, cwd = _build_command(go, tool, install)
            started = time.monotonic()
            with progress.task(f"building {tool.name} ({index}/{len(todo)})"), install.build_log.open("a") as log:
                log.write(f"\n$ (cd {cwd} && {' '.join(command)})\n")
                log.flush()
                proc = subprocess.run(command, cwd=cwd, env=_go_env(install.bin_dir, tool), stdout=log,
                                      stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                tail = "\n".join(install.build_log.read_text().splitlines()[-25:])
                raise K8sBuildError(tool.name, command, tail, install.build_log)
            install._record(tool, time.monotonic() - started)
        return install
