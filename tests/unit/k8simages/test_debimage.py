"""A Debian-root image is rebuilt when anything that shapes its root changes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gxlib.k8simages.catalog import postgresql
from gxlib.k8simages.debimage import DebianRoot
from gxlib.k8simages.recipe import reference_of


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (DebianRoot(packages=("a",)), DebianRoot(packages=("a", "b"))),
        (DebianRoot(packages=("a",), suite="bookworm"), DebianRoot(packages=("a",), suite="trixie")),
        (DebianRoot(packages=("a",), essential_hooks=("x",)), DebianRoot(packages=("a",), essential_hooks=("y",))),
        (DebianRoot(packages=("a",), customize_hooks=("x",)), DebianRoot(packages=("a",), customize_hooks=("y",))),
    ],
)
def test_every_setting_of_the_root_is_an_input(before: DebianRoot, after: DebianRoot) -> None:
    assert before.inputs() != after.inputs()


def test_postgresql_image_tag_changes_when_its_clean_up_changes() -> None:
    recipe = postgresql()
    changed = replace(recipe, root=replace(recipe.root, customize_hooks=()))
    assert reference_of(changed).tag != reference_of(recipe).tag
