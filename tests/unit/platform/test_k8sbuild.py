"""The pins and the cache bookkeeping of the Kubernetes tools (no build here)."""

from __future__ import annotations

import re
from pathlib import Path

from gxlib.k8sbuild.binaries import (
    K8S_MODULE_DIR,
    KUBE_APISERVER,
    KUSTOMIZE,
    NODE_TOOLS,
    WRAPPER_TOOLS,
    K8sInstall,
    k8s_install,
    kubernetes_version,
    modules_still_pinned,
    parse_build_modules,
    pin_digest,
    required_modules,
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


def test_the_wrapper_module_names_every_control_plane_and_node_program_as_a_tool() -> None:
    text = (K8S_MODULE_DIR / "go.mod").read_text()
    tools = set(re.search(r"^tool \((.*?)\)", text, re.MULTILINE | re.DOTALL).group(1).split())  # type: ignore[union-attr]
    assert tools == {tool.package for tool in WRAPPER_TOOLS}
    assert {tool.name for tool in NODE_TOOLS} == {"kubelet", "kube-proxy", "kubectl"}
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


GO_VERSION_M = """/cache/bin/kube-apiserver: go1.26.8
\tpath\tk8s.io/kubernetes/cmd/kube-apiserver
\tmod\tk8s.io/kubernetes\tv1.36.3\th1:qDQd=
\tdep\tcel.dev/expr\tv0.25.1\th1:1Krz=
\tdep\texample.com/old\tv1.0.0
\t=>\texample.com/new\tv1.1.0\th1:abc=
\tbuild\tCGO_ENABLED=0
"""


def test_the_modules_a_binary_was_linked_from_are_read_from_go_version_m() -> None:
    assert parse_build_modules(GO_VERSION_M) == {"k8s.io/kubernetes": "v1.36.3", "cel.dev/expr": "v0.25.1",
                                                  "example.com/old": "v1.0.0"}


def test_a_built_program_stays_current_when_go_mod_only_gains_modules_and_is_stale_when_one_moves() -> None:
    linked = parse_build_modules(GO_VERSION_M)
    required = {**linked, "k8s.io/cli-runtime": "v0.36.3"}  # a new tool line added a module
    assert modules_still_pinned(linked, required)
    assert not modules_still_pinned(linked, {**required, "cel.dev/expr": "v0.26.0"})
    assert not modules_still_pinned(linked, {m: v for m, v in required.items() if m != "cel.dev/expr"})


def test_required_modules_include_the_kubernetes_release() -> None:
    assert required_modules()["k8s.io/kubernetes"] == kubernetes_version()
