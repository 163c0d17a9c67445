"""Images on a Debian root file system made by ``mmdebstrap --variant=essential`` (no Docker engine).

Two kinds:

* :class:`PythonProjectRecipe` — a Python project as its Dockerfile describes it (see :mod:`.dockerfile`):
  Debian's ``python3.<minor>`` for ``FROM python:<minor>-slim``; the files the Dockerfile COPYs are staged, the
  host's pip turns them into the project's wheel plus its dependency wheels, and Debian's Python installs those
  wheels inside the root (chrooted; pip runs from its own wheel, so pip itself is not left in the image). The
  source tree is not kept in the image, only the installed packages. ``useradd``, ``USER``, ``ENV``,
  ``EXPOSE``, ``ENTRYPOINT``, ``CMD`` and ``WORKDIR`` become the passwd entry and the image config.
* :class:`DebianPackagesRecipe` — Debian packages plus small files (PostgreSQL's server and its entrypoint).

Documentation, manual pages and translations are excluded from the root (dpkg path-exclude), and apt's lists
and caches are emptied, to keep the images lean. The whole root is one layer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from gxlib.k8simages.dockerfile import DockerfileSpec, read_dockerfile
from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.layer import entries_from_directory, write_layer
from gxlib.k8simages.oci import ImageConfig, canonical_json, host_platform
from gxlib.k8simages.recipe import ImageContent, file_digest, tree_digest
from gxlib.progress import Progress

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
_LEAN_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)
_TAIL = 25


@dataclass(frozen=True)
class DebianRoot:
    """``mmdebstrap --variant=essential`` of ``suite`` with ``packages`` (the base recipe of an image)."""

    packages: tuple[str, ...]
    suite: str = DEBIAN_SUITE
    mirror: str = DEBIAN_MIRROR
    # Shell commands run after the essential packages and before the others ("$1" is the root).
    essential_hooks: tuple[str, ...] = ()
    # Shell commands run once every package is installed (e.g. removing what the image does not need).
    customize_hooks: tuple[str, ...] = ()

    def inputs(self) -> Mapping[str, str]:
        return {
            "debian.suite": self.suite,
            "debian.mirror": self.mirror,
            "debian.variant": "essential",
            "debian.packages": ",".join(sorted(self.packages)),
            "debian.excludes": ",".join(_LEAN_EXCLUDES),
            "debian.hooks": "\n".join(self.essential_hooks),
            "debian.customize": "\n".join(self.customize_hooks),
        }

    def create(self, target: Path, *, image: str, progress: Progress) -> None:
        mmdebstrap = shutil.which("mmdebstrap")
        if mmdebstrap is None:
            raise ImageBuildError(
                image,
                "looking for mmdebstrap",
                hint="install it: `make system-packages` (scripts/system-packages.txt lists it)",
            )
        command = [
            mmdebstrap,
            "--variant=essential",
            "--mode=root",
            "--format=directory",
            f"--include={','.join(self.packages)}",
            *(f"--dpkgopt=path-exclude={pattern}" for pattern in _LEAN_EXCLUDES),
            *(f"--essential-hook={hook}" for hook in self.essential_hooks),
            *(f"--customize-hook={hook}" for hook in self.customize_hooks),
            '--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*',
            self.suite,
            str(target),
            self.mirror,
        ]
        with progress.task(f"creating the Debian {self.suite} root for {image} ({', '.join(self.packages)})"):
            _run(command, image=image, step="running mmdebstrap", log=target.parent / "mmdebstrap.log")


@dataclass(frozen=True)
class PythonProjectRecipe:
    """A Python project's image, as its Dockerfile describes it, on a Debian root."""

    name: str
    dockerfile: Path
    context: Path
    extra_packages: tuple[str, ...] = ()
    python: str = field(default_factory=lambda: sys.executable)  # the host's pip builds the wheels

    def spec(self) -> DockerfileSpec:
        return read_dockerfile(self.dockerfile)

    def root(self) -> DebianRoot:
        # libstdc++6: manylinux wheels with C++ extensions (grpcio) load the system's C++ runtime, which the
        # python:*-slim images carry and the essential variant does not.
        return DebianRoot(packages=(f"python{self.spec().python_version}", "libstdc++6", *self.extra_packages))

    def inputs(self) -> Mapping[str, str]:
        spec = self.spec()
        # The dependency wheels are resolved for the root's Python (see build); the pins themselves live in the
        # project's pyproject.toml, which the Dockerfile copies (so its digest is an input below).
        inputs = {
            "dockerfile": file_digest(self.dockerfile),
            "wheels": "resolved-for-root-python",
            **self.root().inputs(),
        }
        for copy in spec.copies:
            for source in copy.sources:
                path = self.context / source
                inputs[f"copy:{source}"] = (
                    tree_digest(path, exclude=("__pycache__",)) if path.is_dir() else (file_digest(path))
                )
        return inputs

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        spec = self.spec()
        workdir.mkdir(parents=True, exist_ok=True)
        rootfs = workdir / "rootfs"
        self.root().create(rootfs, image=self.name, progress=progress)
        staged = self._stage_context(spec, workdir / "context")
        wheels = workdir / "wheels"
        with progress.task(f"building the wheels of {self.name} (the project, then its dependencies)"):
            _run(
                [
                    self.python,
                    "-m",
                    "pip",
                    "wheel",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "--wheel-dir",
                    str(wheels),
                    *(str(staged / target) for target in spec.pip_install_targets),
                ],
                image=self.name,
                step="building the project's wheel",
                log=workdir / "pip-wheel.log",
            )
            project_wheels = sorted(str(p) for p in wheels.glob("*.whl"))
            # The dependencies are resolved for the root's Python and C library, not the host's: a release that
            # needs a newer Python patch level than Debian's (e.g. 3.11.5 > bookworm's 3.11.2) is skipped.
            _run(
                [
                    self.python,
                    "-m",
                    "pip",
                    "download",
                    "--disable-pip-version-check",
                    "--only-binary=:all:",
                    *_target_options(rootfs, spec.python_version, image=self.name),
                    "--dest",
                    str(wheels),
                    *project_wheels,
                ],
                image=self.name,
                step="fetching the dependency wheels",
                log=workdir / "pip-download.log",
            )
            _run(
                [
                    self.python,
                    "-m",
                    "pip",
                    "download",
                    "--disable-pip-version-check",
                    "--only-binary=:all:",
                    "--no-deps",
                    "--dest",
                    str(workdir / "pip"),
                    "pip",
                ],
                image=self.name,
                step="fetching pip's wheel",
                log=workdir / "pip-download-pip.log",
            )
        self._install_wheels(rootfs, wheels, next((workdir / "pip").glob("pip-*.whl")), spec.python_version, progress)
        for user in spec.users:
            _add_user(rootfs, user.name, user.uid)
        (rootfs / spec.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        with progress.task(f"packing the root of {self.name} into a layer"):
            layer = write_layer(entries_from_directory(rootfs, keep_owners=True), workdir / "layers")
        return ImageContent(layers=(layer,), config=spec.config())

    def _stage_context(self, spec: DockerfileSpec, staged: Path) -> Path:
        """The build context as the Dockerfile's COPYs lay it out under WORKDIR (only what it copies)."""
        for copy in spec.copies:
            dest = staged / copy.dest
            for source in copy.sources:
                path = self.context / source
                if path.is_dir():  # `COPY dir ./dir`: the directory's contents into dest
                    shutil.copytree(
                        path, dest, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"), dirs_exist_ok=True
                    )
                else:  # `COPY a b ./`: the files into the dest directory
                    dest.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, dest / path.name)
        return staged

    def _install_wheels(
        self, rootfs: Path, wheels: Path, pip_wheel: Path, python_version: str, progress: Progress
    ) -> None:
        inside = rootfs / "tmp" / "gx-wheels"
        shutil.copytree(wheels, inside)
        shutil.copy2(pip_wheel, inside / pip_wheel.name)
        names = sorted(p.name for p in wheels.glob("*.whl"))
        command = [
            _chroot(self.name),
            str(rootfs),
            f"/usr/bin/python{python_version}",
            f"/tmp/gx-wheels/{pip_wheel.name}/pip",
            "install",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            "--break-system-packages",
            "--find-links",
            "/tmp/gx-wheels",
            *(f"/tmp/gx-wheels/{name}" for name in names),
        ]
        with progress.task(f"installing {len(names)} wheels with Debian's python{python_version} in the root"):
            # A clean environment: the host's PIP_* settings (find-links, certificates) mean nothing in the root.
            _run(
                command,
                image=self.name,
                step="installing the wheels",
                log=rootfs.parent / "pip-install.log",
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"},
            )
        shutil.rmtree(inside)


@dataclass(frozen=True)
class DebianPackagesRecipe:
    """Debian packages and a few files of the project's own, e.g. an entrypoint script."""

    name: str
    root: DebianRoot
    config: ImageConfig
    files: Mapping[str, Path] = field(default_factory=dict)  # image path → file in the repo (mode kept)
    directories: Sequence[tuple[str, int, int, int]] = ()  # (path, mode, uid, gid) created in the root

    def inputs(self) -> Mapping[str, str]:
        inputs = {
            **self.root.inputs(),
            "config": canonical_json(self.config.to_json()).decode(),
            "user": "numeric, read from the root",
        }
        inputs.update({f"file:{path}": file_digest(source) for path, source in sorted(self.files.items())})
        inputs["directories"] = ";".join(f"{p}:{m:o}:{u}:{g}" for p, m, u, g in self.directories)
        return inputs

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        workdir.mkdir(parents=True, exist_ok=True)
        rootfs = workdir / "rootfs"
        self.root.create(rootfs, image=self.name, progress=progress)
        for image_path, source in self.files.items():
            target = rootfs / image_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        for path, mode, uid, gid in self.directories:
            target = rootfs / path.lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            os.chown(target, uid, gid)
            target.chmod(mode)
        with progress.task(f"packing the root of {self.name} into a layer"):
            layer = write_layer(entries_from_directory(rootfs, keep_owners=True), workdir / "layers")
        # A numeric user, so that the kubelet can check runAsNonRoot (a package's system user gets its id when
        # the package is installed, so it is read back from the root).
        config = replace(self.config, user=_numeric_user(rootfs, self.config.user, image=self.name))
        return ImageContent(layers=(layer,), config=config)


def _chroot(image: str) -> str:
    path = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin")
    if path is None:
        raise ImageBuildError(image, "looking for chroot", hint="install coreutils' chroot (/usr/sbin/chroot)")
    return path


def _target_options(rootfs: Path, python_version: str, *, image: str) -> list[str]:
    """pip's ``--python-version/--implementation/--abi/--platform`` for the root's Python and glibc."""
    probe = "import platform; print(platform.python_version()); print(platform.libc_ver()[1])"
    result = subprocess.run(
        [_chroot(image), str(rootfs), f"/usr/bin/python{python_version}", "-c", probe],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    lines = result.stdout.split()
    if result.returncode != 0 or len(lines) != 2:
        raise ImageBuildError(
            image,
            "reading the root's Python and C library versions",
            output_tail=(result.stdout + result.stderr)[-2000:],
        )
    full_version, libc = lines
    glibc_minor = int(libc.split(".")[1])
    arch = {"amd64": "x86_64", "arm64": "aarch64"}[host_platform()[1]]
    abi = f"cp{python_version.replace('.', '')}"
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(5, glibc_minor + 1)]
    platforms += [f"manylinux{legacy}_{arch}" for legacy in ("1", "2010", "2014")]
    options = [
        "--python-version",
        full_version,
        "--implementation",
        "cp",
        "--abi",
        abi,
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    for platform_tag in platforms:
        options += ["--platform", platform_tag]
    return options


def _numeric_user(rootfs: Path, user: str, *, image: str) -> str:
    """``name`` → ``uid:gid`` from the root's /etc/passwd; a numeric or empty user is kept."""
    if not user or user.replace(":", "").isdigit():
        return user
    for line in (rootfs / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return f"{fields[2]}:{fields[3]}"
    raise ImageBuildError(
        image,
        f"looking up user {user!r} in the root's /etc/passwd",
        hint="the package that creates the user is missing from the image's package list",
    )


def _add_user(rootfs: Path, name: str, uid: int) -> None:
    """What ``useradd --uid N --no-create-home NAME`` does on Debian: the user and its own group, gid = uid."""
    with (rootfs / "etc" / "passwd").open("a") as passwd:
        passwd.write(f"{name}:x:{uid}:{uid}::/home/{name}:/usr/sbin/nologin\n")
    with (rootfs / "etc" / "group").open("a") as group:
        group.write(f"{name}:x:{uid}:\n")


def _run(command: list[str], *, image: str, step: str, log: Path, env: Mapping[str, str] | None = None) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        result = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-_TAIL:])
        raise ImageBuildError(image, step, command=command, output_tail=tail)
