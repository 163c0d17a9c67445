"""A layer is a deterministic tar: same entries → same digests, whatever the host files' times or owners."""

from __future__ import annotations

import gzip
import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from gxlib.k8simages.errors import LayerError
from gxlib.k8simages.layer import LAYER_MTIME, LayerEntry, entries_from_directory, write_layer


def _members(blob_path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(blob_path, "r:gz") as tar:
        return tar.getmembers()


def test_same_entries_give_the_same_digests_even_when_host_files_differ_in_time(tmp_path: Path) -> None:
    source = tmp_path / "app.bin"
    source.write_bytes(b"\x7fELF pretend")
    first = write_layer([LayerEntry.from_file("usr/bin/app", source, mode=0o755)], tmp_path / "one")
    os.utime(source, (1_700_000_000, 1_700_000_000))
    second = write_layer([LayerEntry.from_file("usr/bin/app", source, mode=0o755)], tmp_path / "two")
    assert (first.digest, first.diff_id) == (second.digest, second.diff_id)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_digests_are_the_sha256_of_the_gzip_blob_and_of_the_tar_inside(tmp_path: Path) -> None:
    blob = write_layer([LayerEntry.from_bytes("etc/hostname", b"gx\n")], tmp_path)
    raw = blob.path.read_bytes()
    assert blob.digest == f"sha256:{hashlib.sha256(raw).hexdigest()}"
    assert blob.size == len(raw)
    tar_bytes = gzip.decompress(raw)
    assert blob.diff_id == f"sha256:{hashlib.sha256(tar_bytes).hexdigest()}"
    assert blob.tar_size == len(tar_bytes)


def test_gzip_header_carries_no_file_name_and_no_timestamp(tmp_path: Path) -> None:
    raw = write_layer([LayerEntry.from_bytes("a", b"x")], tmp_path).path.read_bytes()
    flags, mtime = raw[3], int.from_bytes(raw[4:8], "little")
    assert flags & 0x08 == 0  # FNAME
    assert mtime == 0


def test_entries_are_sorted_root_owned_and_carry_the_fixed_mtime_with_parents_added(tmp_path: Path) -> None:
    entries = [
        LayerEntry.from_bytes("usr/bin/zz", b"z", mode=0o755),
        LayerEntry.from_bytes("etc/passwd", b"root:x:0:0::/:/sbin/nologin\n"),
        LayerEntry.from_bytes("home/app/data", b"d", uid=1000, gid=1000),
    ]
    members = _members(write_layer(entries, tmp_path).path)
    names = [m.name for m in members]
    assert names == sorted(names)
    assert names == ["etc", "etc/passwd", "home", "home/app", "home/app/data", "usr", "usr/bin", "usr/bin/zz"]
    assert all(m.mtime == LAYER_MTIME for m in members)
    assert all((m.uname, m.gname) == ("", "") for m in members)
    by_name = {m.name: m for m in members}
    assert (by_name["etc/passwd"].uid, by_name["etc/passwd"].gid) == (0, 0)
    assert (by_name["home/app/data"].uid, by_name["home/app/data"].gid) == (1000, 1000)
    assert by_name["usr/bin"].isdir() and by_name["usr/bin"].mode == 0o755
    assert by_name["usr/bin/zz"].mode == 0o755


def test_a_directory_tree_keeps_modes_symlinks_and_hard_links(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"tool")
    (root / "bin" / "tool").chmod(0o750)
    os.link(root / "bin" / "tool", root / "bin" / "tool-alias")
    (root / "bin" / "sh").symlink_to("tool")
    os.mkfifo(root / "fifo")
    members = {m.name: m for m in _members(write_layer(entries_from_directory(root), tmp_path / "out").path)}
    assert members["bin/tool"].isfile() and members["bin/tool"].mode == 0o750
    assert members["bin/tool-alias"].islnk() and members["bin/tool-alias"].linkname == "bin/tool"
    assert members["bin/sh"].issym() and members["bin/sh"].linkname == "tool"
    assert "fifo" not in members  # the runtime provides special files


def test_a_directory_tree_can_be_placed_under_a_prefix(tmp_path: Path) -> None:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("hi")
    names = [m.name for m in _members(write_layer(entries_from_directory(root, prefix="/srv/www"), tmp_path).path)]
    assert names == ["srv", "srv/www", "srv/www/index.html"]


def test_the_same_path_listed_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="'etc/a' twice"):
        write_layer([LayerEntry.from_bytes("etc/a", b"1"), LayerEntry.from_bytes("/etc/a", b"2")], tmp_path)


@pytest.mark.parametrize("path", ["../etc/passwd", "usr/../../x", "/", ""])
def test_a_path_that_leaves_the_image_root_is_refused(path: str) -> None:
    with pytest.raises(LayerError) as caught:
        LayerEntry.from_bytes(path, b"x")
    assert caught.value.path == path


def test_a_missing_source_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"missing\.bin"):
        LayerEntry.from_file("bin/x", tmp_path / "missing.bin")
