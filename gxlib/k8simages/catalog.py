"""The project's images: one recipe each, with the versions and layouts the manifests expect.

``images(settings)`` lists them in build order (the pause image first: the cluster needs it before any pod).
The versions here are the ones the manifests name (``k8s/monitoring/stack``), except where a comment says why.

    for recipe in images(ImageSettings()):
        print(reference_of(recipe))
"""

from __future__ import annotations

from pathlib import Path

from gxlib.k8simages.cprogram import KILL
from gxlib.k8simages.debimage import DebianPackagesRecipe, DebianRoot, PythonProjectRecipe
from gxlib.k8simages.errors import UnknownImage
from gxlib.k8simages.goimage import GoImageRecipe, GoProgram
from gxlib.k8simages.goplugins import COREDNS_MAIN_PACKAGE, CoreDNSPlugins, PrometheusDiscovery
from gxlib.k8simages.oci import ImageConfig
from gxlib.k8simages.pause import PauseRecipe
from gxlib.k8simages.recipe import ImageRecipe
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.staticroot import NOBODY, OwnedDirectory, StaticRoot

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PROMETHEUS_VERSION = "v0.55.1"  # Prometheus 2.55.1 (prom/prometheus:v2.55.1 in the manifests); module tags are v0.x
ALERTMANAGER_VERSION = "v0.27.0"  # the manifests' version; v0.35.0's module zip lacks its UI build (see report)
KUBE_STATE_METRICS_VERSION = "v2.20.0"
COREDNS_VERSION = "v1.15.0"
_COMMON_VERSION = "github.com/prometheus/common/version"
# The service discovery the scrape configs use (gxlib/monitoring/scrape.py: kubernetes_sd_configs; static_configs
# and file_sd_configs are always built in). Every other mechanism (AWS, Azure, GCE, Consul, …) is left out.
PROMETHEUS_DISCOVERY = ("kubernetes",)
# The plugins the cluster's Corefile uses (gxlib/k8scluster/addons.py; a unit test keeps the two in step).
COREDNS_PLUGINS = ("errors", "health", "ready", "kubernetes", "cache", "loop", "reload")
REPO_ROOT = Path(__file__).resolve().parents[2]
BACKEND_DOCKERFILE = REPO_ROOT / "k8s" / "images" / "backend.Dockerfile"
CHAINCODE_DOCKERFILE = REPO_ROOT / "chaincode" / "Dockerfile"
POSTGRESQL_ENTRYPOINT = REPO_ROOT / "k8s" / "images" / "postgresql-entrypoint.sh"
POSTGRESQL_DATA = "/var/lib/postgresql/data"


def _stamped(version: str) -> tuple[str, ...]:
    """The prometheus/common version variables, so ``--version`` says what was built (and by whom)."""
    return (f"-X {_COMMON_VERSION}.Version={version}", f"-X {_COMMON_VERSION}.BuildUser=gxlib")


def prometheus(settings: ImageSettings) -> GoImageRecipe:
    # `kill` is there for the operator's reload (`kill -HUP 1` exec'd in prometheus-0). The web UI's assets are
    # not in the module (they are built with npm), so the UI pages are absent; the API and /-/reload work.
    return GoImageRecipe(
        name="prometheus",
        module="github.com/prometheus/prometheus",
        version=PROMETHEUS_VERSION,
        programs=(GoProgram("prometheus", "./cmd/prometheus"),),
        ldflags=_stamped("2.55.1"),
        c_tools=(KILL,),
        overlays=(PrometheusDiscovery(PROMETHEUS_DISCOVERY),),
        root=StaticRoot(
            directories=(OwnedDirectory("etc/prometheus"), OwnedDirectory("prometheus", uid=NOBODY, gid=NOBODY)),
            ca_certificates=True,
        ),
        config=ImageConfig(
            entrypoint=("/bin/prometheus",),
            cmd=("--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"),
            env={"PATH": PATH},
            user=f"{NOBODY}:{NOBODY}",
            working_dir="/prometheus",
            exposed_ports=("9090",),
            labels={"org.opencontainers.image.title": "prometheus", "org.opencontainers.image.version": "2.55.1"},
        ),
        go_binary=settings.go_binary,
        cc=settings.cc,
    )


def alertmanager(settings: ImageSettings) -> GoImageRecipe:
    return GoImageRecipe(
        name="alertmanager",
        module="github.com/prometheus/alertmanager",
        version=ALERTMANAGER_VERSION,
        programs=(GoProgram("alertmanager", "./cmd/alertmanager"),),
        ldflags=_stamped(ALERTMANAGER_VERSION.removeprefix("v")),
        root=StaticRoot(
            directories=(OwnedDirectory("etc/alertmanager"), OwnedDirectory("alertmanager", uid=NOBODY, gid=NOBODY)),
            ca_certificates=True,  # receivers are often HTTPS webhooks
        ),
        config=ImageConfig(
            entrypoint=("/bin/alertmanager",),
            cmd=("--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"),
            env={"PATH": PATH},
            user=f"{NOBODY}:{NOBODY}",
            working_dir="/alertmanager",
            exposed_ports=("9093",),
            labels={"org.opencontainers.image.title": "alertmanager"},
        ),
        go_binary=settings.go_binary,
        cc=settings.cc,
    )


def kube_state_metrics(settings: ImageSettings) -> GoImageRecipe:
    return GoImageRecipe(
        name="kube-state-metrics",
        module="k8s.io/kube-state-metrics/v2",
        version=KUBE_STATE_METRICS_VERSION,
        programs=(GoProgram("kube-state-metrics", "."),),
        ldflags=_stamped(KUBE_STATE_METRICS_VERSION),
        root=StaticRoot(),  # it talks only to the API server, whose CA comes with the service account token
        config=ImageConfig(
            entrypoint=("/bin/kube-state-metrics",),
            cmd=("--port=8080", "--telemetry-port=8081"),
            env={"PATH": PATH},
            user=f"{NOBODY}:{NOBODY}",
            exposed_ports=("8080", "8081"),
            labels={"org.opencontainers.image.title": "kube-state-metrics"},
        ),
        go_binary=settings.go_binary,
        cc=settings.cc,
    )


def coredns(settings: ImageSettings) -> GoImageRecipe:
    # Runs as root: port 53 needs CAP_NET_BIND_SERVICE, which the Deployment grants (the upstream image instead
    # sets a file capability, and this layer format carries no extended attributes).
    return GoImageRecipe(
        name="coredns",
        module="github.com/coredns/coredns",
        version=COREDNS_VERSION,
        programs=(GoProgram("coredns", COREDNS_MAIN_PACKAGE),),
        overlays=(CoreDNSPlugins(COREDNS_PLUGINS),),
        root=StaticRoot(directories=(OwnedDirectory("etc/coredns"),), ca_certificates=True),
        config=ImageConfig(
            entrypoint=("/bin/coredns",),
            env={"PATH": PATH},
            exposed_ports=("53/tcp", "53/udp", "9153"),
            labels={"org.opencontainers.image.title": "coredns"},
        ),
        go_binary=settings.go_binary,
        cc=settings.cc,
    )


def backend() -> PythonProjectRecipe:
    """The CQRS backend (api, submitter, projector: one image, `gx serve …`), as k8s/images/backend.Dockerfile
    describes it; built from the repository root."""
    return PythonProjectRecipe(name="backend", dockerfile=BACKEND_DOCKERFILE, context=REPO_ROOT)


def chaincode() -> PythonProjectRecipe:
    """The chaincode as a service (CCaaS server `gx-chaincode`), as chaincode/Dockerfile describes it."""
    return PythonProjectRecipe(name="chaincode", dockerfile=CHAINCODE_DOCKERFILE, context=CHAINCODE_DOCKERFILE.parent)


def postgresql() -> DebianPackagesRecipe:
    """Debian's PostgreSQL 15 server; the entrypoint creates the cluster on an empty $PGDATA (the volume)."""
    return DebianPackagesRecipe(
        name="postgresql",
        root=DebianRoot(
            packages=("postgresql-15",),
            # No cluster in the image: the entrypoint creates one on the persistent volume.
            essential_hooks=(
                'mkdir -p "$1/etc/postgresql-common" && '
                'echo "create_main_cluster = false" > "$1/etc/postgresql-common/createcluster.conf"',
            ),
            # No JIT: LLVM and its solver library (libz3) are most of the image (~125 MB); PostgreSQL runs
            # without its JIT provider (the entrypoint sets jit=off).
            customize_hooks=(
                'rm -rf "$1"/usr/lib/*-linux-gnu/libLLVM-*.so* "$1"/usr/lib/*-linux-gnu/libz3.so* '
                '"$1"/usr/lib/postgresql/15/lib/llvmjit* "$1"/usr/lib/postgresql/15/lib/bitcode',
            ),
        ),
        files={"usr/local/bin/gx-postgresql-entrypoint": POSTGRESQL_ENTRYPOINT},
        config=ImageConfig(
            entrypoint=("/usr/local/bin/gx-postgresql-entrypoint",),
            env={"PATH": PATH, "PGDATA": POSTGRESQL_DATA, "LANG": "C.UTF-8"},
            user="postgres",
            exposed_ports=("5432",),
            stop_signal="SIGINT",  # PostgreSQL's fast shutdown
            labels={"org.opencontainers.image.title": "postgresql"},
        ),
    )


def images(settings: ImageSettings) -> list[ImageRecipe]:
    """Every image of the project, the pause image first."""
    return [
        PauseRecipe(cc=settings.cc),
        coredns(settings),
        kube_state_metrics(settings),
        alertmanager(settings),
        prometheus(settings),
        postgresql(),
        chaincode(),
        backend(),
    ]


def select(settings: ImageSettings, names: tuple[str, ...]) -> list[ImageRecipe]:
    """The named images (all when ``names`` is empty), in catalog order; an unknown name is an error."""
    recipes = images(settings)
    known = [recipe.name for recipe in recipes]
    for name in names:
        if name not in known:
            raise UnknownImage(name, known)
    return [recipe for recipe in recipes if not names or recipe.name in names]
