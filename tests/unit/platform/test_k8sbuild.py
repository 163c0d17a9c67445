"""The pins and the cache bookkeeping of the Kubernetes tools (no build here)."""

from __future__ import annotations

import re
from pathlib import Path

from gxlib.k8sbuild.binaries import (
    CONTROL_PLANE_TOOLS,
    K8S_MODULE_DIR,
    KUBE_APISERVER,
    KUSTOMIZE,
    K8sInstall,
    k8s_install,
    kubernetes_version,
    pin_digest,
)
from gxlib.k8sbuild.settings import K8sBuildSettings


def _requires() -> dict[str, str]:
    text = (K8S_MODULE_DIR / "go.mod").read_text()
    return dict(re.findall(r"^\s+(\S+) (v\S+)(?: // indirect)?$", text, re.MULTILINE))


def test_every_staging_module_is_pinned_to_the_release_of_k8s_io_kubernetes() -> None:
    version = kubernetes_version()
    staging = f"v0.{version.removeprefix('v1.')}"
    requires = _requires()
    pinned = {m: v for m, v in requires.items() if m.startswith("k8s.io/") and v.startswith("v0.")
              and not m.startswith(("k8s.io/kube-openapi", "k8s.io/utils", "k8s.io/klog", "k8s.io/gengo",
                                    "k8s.io/system-validators", "k8s.io/component-helpers/"))}
    assert {"k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go", "k8s.io/kube-aggregator"} <= pinned.keys()
    assert {m: v for m, v in pinned.items() if v != staging} == {}


def test_the_wrapper_module_names_every_control_plane_program_as_a_tool() -> None:
    text = (K8S_MODULE_DIR / "go.mod").read_text()
    tools = set(re.search(r"^tool \((.*?)\)", text, re.MULTILINE | re.DOTALL).group(1).split())  # type: ignore[union-attr]
    assert tools == {tool.package for tool in CONTROL_PLANE_TOOLS}
    assert not re.search(r"^replace", text, re.MULTILINE)


def test_cache_entry_is_named_by_the_kubernetes_release(tmp_path: Path) -> None:
    install = k8s_install(K8sBuildSettings(cache_root=tmp_path))
    assert install.root == tmp_path / f"k8s-{kubernetes_version()}"
    assert install.lock_file == tmp_path / f"k8s-{kubernetes_version()}.lock"


def test_a_tool_counts_as_built_only_with_its_binary_and_a_record_of_the_same_pin(tmp_path: Path) -> None:
    install = K8sInstall(tmp_path / "k8s")
    install.bin_dir.mkdir(parents=True)
    assert install.missing([KUSTOMIZE, KUBE_APISERVER]) == [KUSTOMIZE, KUBE_APISERVER]
    install.binary(KUSTOMIZE).write_text("")
    assert install.missing([KUSTOMIZE]) == [KUSTOMIZE]  # a binary without a record may be half-written
    install._record(KUSTOMIZE, 1.0)
    assert install.missing([KUSTOMIZE, KUBE_APISERVER]) == [KUBE_APISERVER]
    assert install.manifest()["kustomize"]["pin"] == pin_digest(KUSTOMIZE)
    assert pin_digest(KUBE_APISERVER) != pin_digest(KUSTOMIZE)
