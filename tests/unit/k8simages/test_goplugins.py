"""Prometheus and CoreDNS are built with only the plugins the project uses; the set is part of the image's tag."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from gxlib.k8scluster.addons import COREFILE
from gxlib.k8simages import catalog
from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.goimage import GoImageRecipe
from gxlib.k8simages.goplugins import COREDNS_MAIN_PACKAGE, CoreDNSPlugins, PrometheusDiscovery
from gxlib.k8simages.recipe import reference_of
from gxlib.k8simages.settings import ImageSettings

REPO = Path(__file__).resolve().parents[3]
PLUGIN_CFG = """# comment
root:root
reload:reload
errors:errors
cache:cache
kubernetes:kubernetes
on:github.com/coredns/caddy/onevent
"""


def _coredns_module(tmp_path: Path) -> Path:
    module = tmp_path / "coredns"
    module.mkdir()
    (module / "plugin.cfg").write_text(PLUGIN_CFG)
    return module


def test_coredns_main_registers_only_the_chosen_plugins_in_plugin_cfg_directive_order(tmp_path: Path) -> None:
    files = CoreDNSPlugins(("kubernetes", "errors", "on", "reload")).files(_coredns_module(tmp_path))
    [(path, text)] = files.items()
    assert path == f"{COREDNS_MAIN_PACKAGE.removeprefix('./')}/main.go"
    assert re.findall(r'^\t\t"(\w+)",$', text, re.MULTILINE) == ["reload", "errors", "kubernetes", "on"]
    imports = re.findall(r'^\t_ "([^"]+)"$', text, re.MULTILINE)
    assert imports == [
        "github.com/coredns/coredns/plugin/reload",
        "github.com/coredns/coredns/plugin/errors",
        "github.com/coredns/coredns/plugin/kubernetes",
        "github.com/coredns/caddy/onevent",
    ]
    assert "coremain.Run()" in text and "core/plugin\"" not in text  # not upstream's all-plugins package


def test_a_coredns_plugin_the_release_lacks_is_refused_with_the_known_names(tmp_path: Path) -> None:
    with pytest.raises(ImageBuildError, match="route66") as caught:
        CoreDNSPlugins(("errors", "route66")).files(_coredns_module(tmp_path))
    assert "kubernetes" in (caught.value.hint or "")


def test_prometheus_plugins_file_imports_only_the_chosen_discovery(tmp_path: Path) -> None:
    for name in ("aws", "kubernetes", "consul", "file"):
        (tmp_path / "discovery" / name).mkdir(parents=True)
    files = PrometheusDiscovery(("kubernetes",)).files(tmp_path)
    text = files["plugins/plugins.go"]
    imports = re.findall(r'^\t_ "([^"]+)"$', text, re.MULTILINE)
    assert imports == ["github.com/prometheus/prometheus/discovery/kubernetes"]
    assert "package plugins" in text
    with pytest.raises(ImageBuildError, match="marathon"):
        PrometheusDiscovery(("marathon",)).files(tmp_path)


def test_the_coredns_image_has_exactly_the_plugins_the_clusters_corefile_uses() -> None:
    directives = {line.split()[0] for line in COREFILE.splitlines()[1:] if line.strip() and line.startswith("    ")
                  and not line.startswith("     ") and line.strip() != "}"}
    assert directives == set(catalog.COREDNS_PLUGINS)


def test_the_prometheus_image_has_every_discovery_the_scrape_configs_use() -> None:
    used = set()
    for path in [*REPO.glob("k8s/**/*.yaml"), *REPO.glob("monitoring/**/*.yml"), *REPO.glob("monitoring/**/*.yaml")]:
        used |= set(re.findall(r"\b(\w+)_sd_configs:", path.read_text()))
    assert used, "no scrape config found"
    assert used <= {*catalog.PROMETHEUS_DISCOVERY, "static", "file", "http"}


@pytest.mark.parametrize("name", ["prometheus", "coredns"])
def test_changing_the_plugin_set_changes_the_image_tag(name: str) -> None:
    recipe = getattr(catalog, name)(ImageSettings())
    assert isinstance(recipe, GoImageRecipe) and recipe.overlays
    [overlay] = recipe.overlays
    if isinstance(overlay, CoreDNSPlugins):
        changed = replace(recipe, overlays=(CoreDNSPlugins((*overlay.plugins, "forward")),))
    else:
        assert isinstance(overlay, PrometheusDiscovery)
        changed = replace(recipe, overlays=(PrometheusDiscovery((*overlay.mechanisms, "consul")),))
    assert reference_of(changed).tag != reference_of(recipe).tag


def test_overlaid_files_are_written_into_a_copy_and_the_module_is_left_alone(tmp_path: Path) -> None:
    module = _coredns_module(tmp_path)
    (module / "go.mod").write_text("module github.com/coredns/coredns\n")
    module.chmod(0o555)  # like the Go module cache: read-only
    try:
        recipe = replace(catalog.coredns(ImageSettings()), overlays=(CoreDNSPlugins(("errors",)),))
        source = recipe._source_with_overlays(module, tmp_path / "work" / "source")
        assert (source / "go.mod").read_text() == "module github.com/coredns/coredns\n"
        assert (source / COREDNS_MAIN_PACKAGE / "main.go").is_file()
        assert sorted(p.name for p in module.iterdir()) == ["go.mod", "plugin.cfg"]
    finally:
        module.chmod(0o755)
