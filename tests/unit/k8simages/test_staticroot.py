"""The base layer of a static-binary image: a nobody user, the mount points with their owners, CA certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.layer import EntryKind
from gxlib.k8simages.staticroot import CA_BUNDLE_PATH, NOBODY, OwnedDirectory, StaticRoot


def test_root_has_a_nobody_user_and_group_for_run_as_user_65534() -> None:
    entries = {e.path: e for e in StaticRoot().entries()}
    assert b"nobody:x:65534:65534:" in (entries["etc/passwd"].data or b"")
    assert b"nogroup:x:65534:" in (entries["etc/group"].data or b"")
    assert entries["tmp"].mode == 0o1777


def test_data_directories_belong_to_their_owner(tmp_path: Path) -> None:
    root = StaticRoot(directories=(OwnedDirectory("prometheus", uid=NOBODY, gid=NOBODY),))
    [data] = [e for e in root.entries() if e.path == "prometheus"]
    assert (data.kind, data.uid, data.gid) == (EntryKind.DIRECTORY, NOBODY, NOBODY)


def test_ca_bundle_is_included_on_request_and_its_digest_is_an_input(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    root = StaticRoot(ca_certificates=True, ca_bundle=bundle)
    assert CA_BUNDLE_PATH in {e.path for e in root.entries()}
    before = root.inputs()["root.ca-certificates"]
    bundle.write_text("-----BEGIN CERTIFICATE-----\nchanged\n")
    assert root.inputs()["root.ca-certificates"] != before


def test_a_missing_ca_bundle_says_which_package_to_install(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="ca-certificates"):
        StaticRoot(ca_certificates=True, ca_bundle=tmp_path / "none.crt").entries()
