"""Build Hyperledger Fabric from source with ``go install`` and cache the result outside the repo.

The Fabric release is pinned by ``fabric_module/go.mod`` (module proxy pseudo-version + go.sum). The
cache lives at ``<cache_root>/fabric-<commit>/`` with ``bin/`` (peer, orderer, configtxgen, osnadmin),
``config/`` (Fabric's sampleconfig YAML templates) and ``builders/ccaas/bin/`` (our CCaaS external
builder). A ``manifest.json`` written last marks a complete build; anything less is completed, not
restarted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gxlib.config import FabricBuildSettings
from gxlib.errors import GxError
from gxlib.filelock import exclusive_lock
from gxlib.progress import Progress

FABRIC_MODULE = "github.com/hyperledger/fabric"
# The release label stamped into `peer version`; must name the commit pinned in fabric_module/go.mod.
FABRIC_RELEASE = "2.5.9"
FABRIC_COMMANDS = ("peer", "orderer", "configtxgen", "osnadmin")
SAMPLECONFIG_FILES = ("core.yaml", "orderer.yaml", "configtx.yaml")
BUILDER_STEPS = ("detect", "build", "release")
MIN_GO = (1, 24)

_PACKAGE_DIR = Path(__file__).resolve().parent
FABRIC_MODULE_DIR = _PACKAGE_DIR / "fabric_module"
CCAAS_BUILDER_DIR = _PACKAGE_DIR / "ccaas_builder"


class GoMissingError(GxError):
    """Go is not installed, or too old to build Fabric."""


class FabricBuildError(GxError):
    """``go install`` of a Fabric command failed."""

    def __init__(self, command: str, log_tail: str, log_file: Path) -> None:
        super().__init__(
            f"building {command} failed; last lines of {log_file}:\n{log_tail}",
            hint="check that the Go module proxy is reachable (GOPROXY) and retry `gx fabric build`",
        )
        self.command = command
        self.log_file = log_file


def fabric_module_version() -> str:
    """The pseudo-version of github.com/hyperledger/fabric that go.mod requires."""
    text = (FABRIC_MODULE_DIR / "go.mod").read_text()
    match = re.search(rf"^\s*{re.escape(FABRIC_MODULE)} (v\S+)", text, re.MULTILINE)
    if not match:
        raise GxError(f"{FABRIC_MODULE_DIR / 'go.mod'} does not require {FABRIC_MODULE}")
    return match.group(1)


def fabric_commit() -> str:
    """The 12-digit commit abbreviation inside the pinned pseudo-version."""
    return fabric_module_version().rsplit("-", 1)[1]


def builder_source_digest() -> str:
    """sha256 over the CCaaS builder's sources: a change rebuilds the cached builder."""
    digest = hashlib.sha256()
    for path in sorted(CCAAS_BUILDER_DIR.iterdir()):
        if path.suffix in {".go", ".mod"}:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class FabricInstall:
    """Paths of one cached Fabric build."""

    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def builder_dir(self) -> Path:
        """The directory named in core.yaml ``chaincode.externalBuilders[].path``."""
        return self.root / "builders" / "ccaas"

    @property
    def manifest_file(self) -> Path:
        return self.root / "manifest.json"

    @property
    def build_log(self) -> Path:
        return self.root / "build.log"

    def binary(self, command: str) -> Path:
        return self.bin_dir / command

    def manifest(self) -> dict[str, object] | None:
        try:
            manifest: dict[str, object] = json.loads(self.manifest_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return manifest

    def is_complete(self) -> bool:
        manifest = self.manifest()
        if manifest is None or manifest.get("builder_source_sha256") != builder_source_digest():
            return False
        wanted = [self.binary(c) for c in FABRIC_COMMANDS]
        wanted += [self.builder_dir / "bin" / s for s in BUILDER_STEPS]
        wanted += [self.config_dir / f for f in SAMPLECONFIG_FILES]
        return all(p.exists() for p in wanted)


def fabric_install(settings: FabricBuildSettings) -> FabricInstall:
    return FabricInstall(settings.cache_root / f"fabric-{fabric_commit()}")


def go_version(go_binary: str) -> tuple[int, int]:
    """The (major, minor) of the Go toolchain, or GoMissingError with what to install."""
    path = shutil.which(go_binary)
    if path is None:
        raise GoMissingError(
            f"Go was not found (looked for {go_binary!r} on PATH); Fabric is built from source with it",
            hint=f"install Go {MIN_GO[0]}.{MIN_GO[1]} or newer and put `go` on PATH, "
            "or point GX_FABRIC_GO_BINARY at it",
        )
    out = subprocess.run([path, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    if not match:
        raise GoMissingError(f"could not read the version of {path} (`go env GOVERSION` printed {out!r})")
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN_GO:
        raise GoMissingError(
            f"{path} is Go {version[0]}.{version[1]}; building Fabric needs Go {MIN_GO[0]}.{MIN_GO[1]} or newer",
            hint="install a newer Go and put it first on PATH, or set GX_FABRIC_GO_BINARY",
        )
    return version


def _go_env(install: FabricInstall, gobin: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["GOBIN"] = str(gobin)
    # Module mode from the pinned go.mod; never stamp VCS data of whatever checkout we sit in.
    env["GOFLAGS"] = " ".join(f for f in (env.get("GOFLAGS", ""), "-mod=readonly", "-buildvcs=false") if f)
    env.setdefault("CGO_ENABLED", "1")
    return env


def _run_go(args: list[str], *, cwd: Path, env: dict[str, str], log_file: Path, what: str) -> str:
    with log_file.open("a") as log:
        log.write(f"\n$ (cd {cwd} && {' '.join(args)})\n")
        log.flush()
        proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=log, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log_file.read_text().splitlines()[-25:])
        raise FabricBuildError(what, tail, log_file)
    return proc.stdout


def ensure_fabric(settings: FabricBuildSettings, progress: Progress | None = None) -> FabricInstall:
    """The cached Fabric build, building whatever is missing first."""
    install = fabric_install(settings)
    if install.is_complete():
        return install
    return build_fabric(settings, progress)


def build_fabric(
    settings: FabricBuildSettings, progress: Progress | None = None, *, force: bool = False
) -> FabricInstall:
    """Build (or complete) the cache entry: Fabric commands, sampleconfig, CCaaS builder."""
    progress = progress or Progress()
    install = fabric_install(settings)
    go_major_minor = go_version(settings.go_binary)
    go = shutil.which(settings.go_binary) or settings.go_binary
    with exclusive_lock(install.root.with_suffix(".lock")):
        if install.is_complete() and not force:
            progress.info(f"Fabric {FABRIC_RELEASE} is already built in {install.root}")
            return install
        install.root.mkdir(parents=True, exist_ok=True)
        install.manifest_file.unlink(missing_ok=True)
        started = time.monotonic()
        env = _go_env(install, install.bin_dir)
        version_flags = (
            f"-X {FABRIC_MODULE}/common/metadata.Version={FABRIC_RELEASE} "
            f"-X {FABRIC_MODULE}/common/metadata.CommitSHA={fabric_commit()[:7]}"
        )
        progress.info(
            f"Building Hyperledger Fabric {FABRIC_RELEASE} (commit {fabric_commit()}) with Go "
            f"{go_major_minor[0]}.{go_major_minor[1]} into {install.root}; log: {install.build_log}"
        )
        for index, command in enumerate(FABRIC_COMMANDS, 1):
            if install.binary(command).exists() and not force:
                progress.info(f"  {command} already built")
                continue
            with progress.task(f"go install {command} ({index}/{len(FABRIC_COMMANDS)})"):
                _run_go(
                    [go, "install", "-trimpath", "-ldflags", version_flags, f"{FABRIC_MODULE}/cmd/{command}"],
                    cwd=FABRIC_MODULE_DIR, env=env, log_file=install.build_log, what=command,
                )
        with progress.task("copying Fabric's sampleconfig templates"):
            module_dir = Path(
                _run_go([go, "list", "-m", "-f", "{{.Dir}}", FABRIC_MODULE], cwd=FABRIC_MODULE_DIR, env=env,
                        log_file=install.build_log, what="go list").strip()
            )
            install.config_dir.mkdir(parents=True, exist_ok=True)
            for name in SAMPLECONFIG_FILES:
                shutil.copyfile(module_dir / "sampleconfig" / name, install.config_dir / name)
        with progress.task("building the CCaaS external builder (detect/build/release)"):
            builder_bin = install.builder_dir / "bin"
            builder_bin.mkdir(parents=True, exist_ok=True)
            _run_go(
                [go, "build", "-trimpath", "-o", str(builder_bin / "ccaas-builder"), "."],
                cwd=CCAAS_BUILDER_DIR, env=_go_env(install, builder_bin), log_file=install.build_log,
                what="ccaas-builder",
            )
            for step in BUILDER_STEPS:
                link = builder_bin / step
                link.unlink(missing_ok=True)
                link.symlink_to("ccaas-builder")
        elapsed = time.monotonic() - started
        install.manifest_file.write_text(json.dumps({
            "fabric_release": FABRIC_RELEASE,
            "fabric_module_version": fabric_module_version(),
            "go_version": f"{go_major_minor[0]}.{go_major_minor[1]}",
            "builder_source_sha256": builder_source_digest(),
            "build_seconds": round(elapsed, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2))
        progress.info(f"Fabric {FABRIC_RELEASE} built in {elapsed:.1f}s → {install.bin_dir}")
        return install
