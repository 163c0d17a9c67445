"""One image layer: a list of entries packed into a deterministic tar, gzipped, as the OCI image spec describes.

Determinism is what makes an image's digest a function of its inputs: entries are written in sorted path order,
every entry gets the same mtime, owners are uid/gid 0 with no user or group names unless an entry says
otherwise, and gzip writes neither a file name nor a timestamp. So the same entries always give the same
``diff_id`` (sha256 of the tar) and the same blob digest (sha256 of the gzip stream).

    entries = [LayerEntry.directory("etc"), LayerEntry.from_bytes("etc/passwd", b"root:x:0:0::/:/bin/sh\\n")]
    blob = write_layer(entries, workdir)  # blob.digest, blob.diff_id, blob.path
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import os
import stat
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from gxlib.k8simages.errors import LayerError

# Every entry's mtime: 2000-01-01T00:00:00Z (0 would be read by some tools as "unset").
LAYER_MTIME = 946_684_800
_GZIP_LEVEL = 6
_CHUNK = 1 << 20


class EntryKind(Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


@dataclass(frozen=True)
class LayerEntry:
    """One path in a layer. ``path`` is relative to the image root (``usr/bin/pause``, no leading slash).

    A file's content is ``data`` or the host file ``source``; a link's target is ``link_target`` (for a hard
    link, another path in the same layer).
    """

    path: str
    kind: EntryKind
    mode: int
    uid: int = 0
    gid: int = 0
    data: bytes | None = None
    source: Path | None = None
    link_target: str | None = None

    @staticmethod
    def from_bytes(path: str, data: bytes, *, mode: int = 0o644, uid: int = 0, gid: int = 0) -> LayerEntry:
        return LayerEntry(normalise_path(path), EntryKind.FILE, mode, uid, gid, data=data)

    @staticmethod
    def from_file(path: str, source: Path, *, mode: int | None = None, uid: int = 0, gid: int = 0) -> LayerEntry:
        """The host file ``source`` at ``path``; its permission bits unless ``mode`` is given."""
        if not source.is_file():
            raise LayerError(f"layer source {source} is not a file", path=str(source))
        bits = stat.S_IMODE(source.stat().st_mode) if mode is None else mode
        return LayerEntry(normalise_path(path), EntryKind.FILE, bits, uid, gid, source=source)

    @staticmethod
    def directory(path: str, *, mode: int = 0o755, uid: int = 0, gid: int = 0) -> LayerEntry:
        return LayerEntry(normalise_path(path), EntryKind.DIRECTORY, mode, uid, gid)

    @staticmethod
    def symlink(path: str, target: str) -> LayerEntry:
        return LayerEntry(normalise_path(path), EntryKind.SYMLINK, 0o777, link_target=target)


@dataclass(frozen=True)
class LayerBlob:
    """A written layer: the gzip blob at ``path`` with its digest and size, and the uncompressed tar's digest and
    size (what the layer takes once unpacked, near enough)."""

    path: Path
    digest: str
    size: int
    diff_id: str
    tar_size: int


def normalise_path(path: str) -> str:
    """``/usr/bin/x`` and ``./usr/bin/x`` become ``usr/bin/x``; ``..`` is refused (it would leave the root)."""
    pure = PurePosixPath(path.lstrip("/"))
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        raise LayerError(f"layer path {path!r} is empty or leaves the image root", path=path)
    return "/".join(parts)


def with_parent_directories(entries: Iterable[LayerEntry]) -> list[LayerEntry]:
    """The entries plus a root-owned 0755 directory entry for every parent that is not listed itself."""
    listed = {e.path: e for e in entries}
    for path in list(listed):
        parent = PurePosixPath(path).parent
        while str(parent) != ".":
            listed.setdefault(str(parent), LayerEntry.directory(str(parent)))
            parent = parent.parent
    return list(listed.values())


def entries_from_directory(root: Path, *, prefix: str = "", keep_owners: bool = False) -> list[LayerEntry]:
    """Every file, directory and symlink under ``root`` (placed under ``prefix`` in the image).

    Permission bits are kept; owners are kept only with ``keep_owners`` (a Debian root file system has files
    owned by system users), else they are 0. Files that share an inode become hard links to the first path in
    sorted order. Device nodes, sockets and FIFOs are left out: the runtime provides ``/dev``.
    """
    if not root.is_dir():
        raise LayerError(f"layer source {root} is not a directory", path=str(root))
    entries: list[LayerEntry] = []
    first_path_of_inode: dict[tuple[int, int], str] = {}
    for host_path in sorted(_walk(root)):
        relative = host_path.relative_to(root).as_posix()
        path = normalise_path(f"{prefix}/{relative}" if prefix else relative)
        info = host_path.lstat()
        uid, gid = (info.st_uid, info.st_gid) if keep_owners else (0, 0)
        bits = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(host_path)
            entries.append(LayerEntry(path, EntryKind.SYMLINK, bits, uid, gid, link_target=target))
        elif stat.S_ISDIR(info.st_mode):
            entries.append(LayerEntry(path, EntryKind.DIRECTORY, bits, uid, gid))
        elif stat.S_ISREG(info.st_mode):
            inode = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and inode in first_path_of_inode:
                entries.append(
                    LayerEntry(path, EntryKind.HARDLINK, bits, uid, gid, link_target=first_path_of_inode[inode])
                )
            else:
                first_path_of_inode.setdefault(inode, path)
                entries.append(LayerEntry(path, EntryKind.FILE, bits, uid, gid, source=host_path))
    return entries


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            yield base / name
        for name in filenames:
            yield base / name


def write_layer(entries: Iterable[LayerEntry], workdir: Path) -> LayerBlob:
    """Pack ``entries`` (parents added, sorted by path) into ``workdir/<digest hex>.tar.gz``."""
    listed = sorted(entries, key=lambda e: e.path)
    _refuse_duplicates(listed)
    ordered = sorted(with_parent_directories(listed), key=lambda e: e.path)
    workdir.mkdir(parents=True, exist_ok=True)
    diff_hash = hashlib.sha256()
    blob_hash = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=workdir, prefix=".layer-", suffix=".tar.gz", delete=False) as out:
        temp_path = Path(out.name)
        try:
            hashing_out = _HashingWriter(out, blob_hash)
            with gzip.GzipFile(filename="", mode="wb", fileobj=hashing_out, mtime=0, compresslevel=_GZIP_LEVEL) as gz:
                hashing_tar = _HashingWriter(gz, diff_hash)
                with tarfile.open(fileobj=hashing_tar, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    for entry in ordered:
                        _add(tar, entry)
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise
    digest = f"sha256:{blob_hash.hexdigest()}"
    final = workdir / f"{blob_hash.hexdigest()}.tar.gz"
    temp_path.replace(final)
    return LayerBlob(
        path=final,
        digest=digest,
        size=final.stat().st_size,
        diff_id=f"sha256:{diff_hash.hexdigest()}",
        tar_size=hashing_tar.count,
    )


def _refuse_duplicates(ordered: list[LayerEntry]) -> None:
    for before, after in itertools.pairwise(ordered):
        if before.path == after.path:
            raise LayerError(f"layer lists {before.path!r} twice", path=before.path)


def _add(tar: tarfile.TarFile, entry: LayerEntry) -> None:
    info = tarfile.TarInfo(entry.path + ("/" if entry.kind is EntryKind.DIRECTORY else ""))
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.uname = info.gname = ""
    info.mtime = LAYER_MTIME
    if entry.kind is EntryKind.DIRECTORY:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind is EntryKind.SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link_target or ""
        tar.addfile(info)
    elif entry.kind is EntryKind.HARDLINK:
        info.type = tarfile.LNKTYPE
        info.linkname = entry.link_target or ""
        tar.addfile(info)
    elif entry.data is not None:
        info.size = len(entry.data)
        tar.addfile(info, io.BytesIO(entry.data))
    elif entry.source is not None:
        try:
            with entry.source.open("rb") as handle:
                info.size = os.fstat(handle.fileno()).st_size
                tar.addfile(info, handle)
        except OSError as exc:
            raise LayerError(
                f"cannot read {entry.source} for layer path {entry.path!r}: {exc}", path=entry.path
            ) from exc
    else:
        raise LayerError(f"layer file {entry.path!r} has neither data nor a source file", path=entry.path)


class _Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> int | None: ...


class _HashingWriter(io.RawIOBase):
    """Passes writes through to ``target`` and feeds them to ``digest`` (so a blob is hashed as it is written)."""

    def __init__(self, target: _Sink, digest: Any) -> None:
        self._target = target
        self._digest = digest
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self._target.write(view)
        self.count += len(view)
        return len(view)
