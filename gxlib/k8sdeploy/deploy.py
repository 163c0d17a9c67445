"""``gx k8s deploy``: the overlay of an environment running on the local single-node cluster.

Idempotent, with progress, in this order: the cluster up (gxlib.k8scluster.NodeCluster.up: nothing to do when it
runs); the images the overlay needs, built when their inputs changed and imported into the node's containerd;
the generated kustomization (gxlib.k8sdeploy.kustomization) built with kustomize and checked against the image
catalog; the default StorageClass and the static local volumes of the StatefulSets' claims; the namespaces and
the Secrets the manifests require (created once, kept afterwards); a finished migration Job replaced when its
image changed; a server-side apply of every object (what changed is reported: a second deploy changes nothing);
then a wait until every Deployment and StatefulSet is Ready and every Job complete.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from gxlib.config import Environment
from gxlib.k8sbuild.binaries import KUBECTL, KUSTOMIZE, ensure_k8s_tools
from gxlib.k8sbuild.settings import K8sBuildSettings
from gxlib.k8scluster import containerd
from gxlib.k8scluster.cluster import NodeCluster
from gxlib.k8scluster.kubectl import Kubectl
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8sdeploy import secrets, storage
from gxlib.k8sdeploy.errors import DeployError, ImageNotInCatalog, NotReady
from gxlib.k8sdeploy.fabric import DevnetOnNode, FabricReport, with_host_fabric_nodes
from gxlib.k8sdeploy.images import CATALOG_IMAGES, NOT_BUILT, images_of, split_reference
from gxlib.k8sdeploy.kustomization import CHAINCODE_ID_KEY, render_kustomization
from gxlib.k8sdeploy.readiness import WAITED_KINDS, WorkloadState, pod_problems, workload_state
from gxlib.k8sdeploy.settings import DeploySettings, deploy_dir, volumes_dir
from gxlib.k8simages.catalog import REPO_ROOT, select
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import ImageStore
from gxlib.progress import Progress, WaitTimeout

FIELD_MANAGER = "gx-k8s-deploy"
MONITORING_NAMESPACE = "fabric"
ObjectKey = tuple[str, str, str]


def object_key(doc: Mapping[str, Any]) -> ObjectKey:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace", ""), meta["name"]


SERVER_FIELDS = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")


def revision(doc: Mapping[str, Any]) -> str:
    """What moves when an object's desired state changes: its generation where it has one (a Deployment's or a
    PodDisruptionBudget's status updates move the resourceVersion, not the generation), else a digest of its
    content without what the server keeps (ConfigMaps, Secrets, Services, RBAC: taking over a field another
    manager set to the same value moves the resourceVersion, but changes nothing)."""
    meta = doc["metadata"]
    if meta.get("generation"):
        return f"g{meta['generation']}"
    content = {key: value for key, value in doc.items() if key != "status"}
    content["metadata"] = {key: value for key, value in meta.items() if key not in SERVER_FIELDS}
    return "c" + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass
class DeployedImage:
    name: str
    reference: str
    built: bool
    imported: bool

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DeployReport:
    """What a deploy did and found; ``changed`` lists the objects the apply created or changed."""

    env: str
    kustomization: str
    cluster_already_running: bool
    images: list[DeployedImage] = field(default_factory=list)
    objects: list[ObjectKey] = field(default_factory=list)
    changed: list[ObjectKey] = field(default_factory=list)
    volumes: list[dict[str, str]] = field(default_factory=list)
    secrets_created: bool = False
    scaled_to_zero: list[dict[str, str]] = field(default_factory=list)
    readiness: list[WorkloadState] = field(default_factory=list)
    fabric: FabricReport | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env, "kustomization": self.kustomization,
            "cluster_already_running": self.cluster_already_running,
            "images": [i.to_json() for i in self.images],
            "objects": [{"kind": k, "namespace": ns, "name": n, "changed": (k, ns, n) in self.changed}
                        for k, ns, n in self.objects],
            "changed": len(self.changed),
            "volumes": self.volumes,
            "secrets_created": self.secrets_created,
            "scaled_to_zero": self.scaled_to_zero,
            "readiness": [w.to_json() for w in self.readiness],
            "ready": all(w.done for w in self.readiness),
            "fabric": self.fabric.to_json() if self.fabric else None,
            "seconds": round(self.seconds, 1),
        }


class OverlayDeployment:
    """One environment's overlay on the cluster of ``cluster_settings``."""

    def __init__(self, cluster_settings: K8sClusterSettings | None = None, settings: DeploySettings | None = None,
                 *, images: ImageSettings | None = None, build: K8sBuildSettings | None = None,
                 progress: Progress | None = None) -> None:
        self.settings = settings or DeploySettings()
        self.progress = progress or Progress()
        self.build = build or K8sBuildSettings()
        self.image_settings = images or ImageSettings()
        self.cluster = NodeCluster(cluster_settings, self.build, self.image_settings, self.progress)
        self.deploy_dir = deploy_dir(self.cluster.layout.root)
        self.volumes_dir = volumes_dir(self.cluster.layout.root)
        self.overlay_dir = REPO_ROOT / "k8s" / "overlays" / self.settings.env
        self.backend_namespace = f"backend-{self.settings.env}"
        self.fabric = DevnetOnNode(self.cluster.layout.root, self.cluster.settings.node_ip,
                                   Environment(self.settings.env), port_offset=self.settings.devnet_port_offset,
                                   progress=self.progress, chaincode_version=self.settings.chaincode_version,
                                   roll_timeout_s=self.settings.chaincode_roll_timeout_s)

    @property
    def kubectl(self) -> Kubectl:
        install = ensure_k8s_tools(self.build, [KUBECTL, KUSTOMIZE], progress=self.progress)
        return Kubectl(install.binary(KUBECTL), self.cluster.layout.kubeconfig)

    # --- the whole deploy -----------------------------------------------------------------------------------
    def deploy(self) -> DeployReport:
        started = time.monotonic()
        if not self.overlay_dir.is_dir():
            raise DeployError("overlay", f"no overlay {self.overlay_dir}", hint="environments: devnet")
        up = self.cluster.up()
        report = DeployReport(self.settings.env, str(self.deploy_dir / "kustomization.yaml"), up.already_running)
        kubectl = self.kubectl
        report.images = self._images()
        references = {i.name: i.reference for i in report.images}
        objects = self._render(references, {})
        running_ids = self._running_package_ids(kubectl, objects)
        if running_ids:
            objects = self._render(references, running_ids)
        report.objects = [object_key(o) for o in objects]
        self._check_images(objects, report.images)
        report.scaled_to_zero = [{"workload": f"{kind}/{name}", "image": n.manifest_name, "reason": n.reason}
                                 for n in NOT_BUILT for kind, name in n.workloads]
        report.volumes = self._storage(kubectl, objects)
        namespaces = [o for o in objects if o["kind"] == "Namespace"]
        report.changed = self._apply(kubectl, namespaces, "namespaces")
        report.secrets_created = self._secrets(kubectl)
        # The devnet first: the submitter and projector start only with their Fabric client Secret.
        with self.progress.task(f"the devnet on the node address {self.cluster.settings.node_ip}"):
            environment = self.fabric.up()
        report.changed += self._apply(kubectl, self.fabric.client_secrets(environment, self.backend_namespace),
                                      "the submitter's and projector's Fabric client Secrets")
        self._replace_changed_jobs(kubectl, objects)
        report.changed += self._apply(kubectl, [o for o in objects if o["kind"] != "Namespace"], "the overlay")
        with self.progress.task(f"chaincode {self.settings.chaincode_version} on the chaincode pods"):
            report.fabric = self.fabric.deploy_chaincode(self.cluster.layout.kubeconfig)
        try:
            report.readiness = self._wait_ready(kubectl, objects)
        except NotReady as exc:
            report.readiness = exc.states
            report.seconds = time.monotonic() - started
            exc.report = report
            raise
        report.seconds = time.monotonic() - started
        return report

    def down(self) -> dict[str, Any]:
        """Stop the devnet the deploy started, then take the cluster down (its state dir, with the volumes, the
        generated kustomization and the devnet's files, goes with it)."""
        devnet_stopped = self.fabric.down()
        report = self.cluster.down().to_json()
        report["devnet_stopped"] = devnet_stopped
        return report

    # --- steps ----------------------------------------------------------------------------------------------
    def _images(self) -> list[DeployedImage]:
        store = ImageStore(self.image_settings.cache_root)
        names = tuple(dict.fromkeys(entry.recipe for entry in CATALOG_IMAGES))
        deployed: list[DeployedImage] = []
        for recipe in select(self.image_settings, names):
            with self.progress.task(f"image {recipe.name} (built only when its inputs changed)"):
                ensured = store.ensure(recipe, self.progress)
            with self.progress.task(f"importing {ensured.image.reference} into the node's containerd"):
                imported = containerd.import_image(self.cluster.settings, self.cluster.layout, ensured.image.archive,
                                                   ensured.image.reference)
            deployed.append(DeployedImage(recipe.name, ensured.image.reference, ensured.built, imported))
        return deployed

    @staticmethod
    def _running_package_ids(kubectl: Kubectl, objects: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
        """The chaincode package IDs in the cluster's ConfigMaps that differ from the overlay's (a roll set them)."""
        found: dict[tuple[str, str], str] = {}
        for doc in objects:
            if doc["kind"] != "ConfigMap" or CHAINCODE_ID_KEY not in (doc.get("data") or {}):
                continue
            _, namespace, name = object_key(doc)
            current = kubectl.get_json("configmap", name, "-n", namespace) or {}
            value = (current.get("data") or {}).get(CHAINCODE_ID_KEY)
            if value and value != doc["data"][CHAINCODE_ID_KEY]:
                found[(namespace, name)] = value
        return found

    def _render(self, references: Mapping[str, str], package_ids: Mapping[tuple[str, str], str]
                ) -> list[dict[str, Any]]:
        monitoring = REPO_ROOT / "k8s" / "monitoring" / "stack" / "alertmanager.yml"
        prometheus = with_host_fabric_nodes((monitoring.parent / "prometheus.yml").read_text(),
                                            self.fabric.operations_targets())
        generated = render_kustomization(self.overlay_dir, references, monitoring_namespace=MONITORING_NAMESPACE,
                                         alertmanager_yml=monitoring.read_text(),
                                         webhook_url=self.settings.alert_webhook_url, directory=self.deploy_dir,
                                         package_ids=package_ids, prometheus_yml=prometheus)
        generated.write(self.deploy_dir)
        install = ensure_k8s_tools(self.build, [KUSTOMIZE], progress=self.progress)
        proc = subprocess.run([str(install.binary(KUSTOMIZE)), "build", str(self.deploy_dir)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise DeployError("kustomize", f"kustomize build {self.deploy_dir} failed:\n{proc.stderr.strip()}",
                              hint=f"the generated file is {self.deploy_dir / 'kustomization.yaml'}")
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    @staticmethod
    def _check_images(objects: list[dict[str, Any]], images: list[DeployedImage]) -> None:
        built = {i.reference for i in images}
        not_built = {n.manifest_name for n in NOT_BUILT}
        strays = sorted(r for r in images_of(objects) if r not in built and split_reference(r)[0] not in not_built)
        if strays:
            raise ImageNotInCatalog(strays)

    def _storage(self, kubectl: Kubectl, objects: list[dict[str, Any]]) -> list[dict[str, str]]:
        volumes = storage.claims_of(objects, self.volumes_dir)
        created = storage.ensure_directories(volumes)
        for directory in created:
            self.progress.info(f"volume directory {directory}")
        pvs = [storage.persistent_volume(v, storage_class_name=self.settings.storage_class,
                                         node_name=self.cluster.settings.node_name) for v in volumes]
        self._apply(kubectl, [storage.storage_class(self.settings.storage_class), *pvs], "storage")
        return [{"volume": v.name, "claim": f"{v.namespace}/{v.claim}", "path": str(v.directory),
                 "capacity": v.capacity} for v in volumes]

    def _secrets(self, kubectl: Kubectl) -> bool:
        """The backend namespace's Secrets: kept when they exist, generated otherwise; True when created now."""
        namespace = self.backend_namespace
        postgres = kubectl.get_json("secret", secrets.POSTGRES_SECRET, "-n", namespace)
        tokens = kubectl.get_json("secret", secrets.API_TOKENS_SECRET, "-n", namespace)
        existing = secrets.existing_secrets(postgres, tokens)
        values = existing or secrets.BackendSecrets.generate()
        self._apply(kubectl, values.secret_objects(namespace), "secrets")
        if existing is None:
            self.progress.info(f"created Secrets {secrets.POSTGRES_SECRET}, {secrets.BACKEND_SECRET}, "
                               f"{secrets.API_TOKENS_SECRET} in {namespace} (in the cluster only; "
                               f"`kubectl -n {namespace} get secret {secrets.API_TOKENS_SECRET} -o yaml` shows the "
                               "API token)")
        return existing is None

    def _replace_changed_jobs(self, kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
        """A Job's pod template is immutable: a Job whose images differ from the overlay's is deleted first."""
        for job in (o for o in objects if o["kind"] == "Job"):
            _, namespace, name = object_key(job)
            current = kubectl.get_json("job", name, "-n", namespace)
            if current is not None and images_of([current]) != images_of([job]):
                with self.progress.task(f"replacing Job {namespace}/{name} (its image changed)"):
                    proc = kubectl.run("delete", "job", name, "-n", namespace, "--wait=true",
                                       "--cascade=foreground", timeout_s=120)
                    if proc.returncode != 0:
                        raise DeployError("jobs", f"deleting Job {namespace}/{name} failed: {proc.stderr.strip()}")

    def _apply(self, kubectl: Kubectl, objects: list[dict[str, Any]], what: str) -> list[ObjectKey]:
        """Server-side apply; the keys of the objects it created or changed (see :func:`revision`)."""
        if not objects:
            return []
        before = self._resource_versions(kubectl, objects)
        with self.progress.task(f"applying {what} ({len(objects)} objects)"):
            proc = kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager", FIELD_MANAGER,
                               "-o", "json", "-f", "-", input_text=yaml.safe_dump_all(objects, sort_keys=False),
                               timeout_s=180)
        if proc.returncode != 0:
            raise DeployError("apply", f"applying {what} failed: {proc.stderr.strip()}",
                              hint="fix the object named above; a second deploy applies the rest again")
        data = json.loads(proc.stdout)
        after = data.get("items", [data]) if data.get("kind", "").endswith("List") else [data]
        return [object_key(o) for o in after if before.get(object_key(o)) != revision(o)]

    @staticmethod
    def _resource_versions(kubectl: Kubectl, objects: list[dict[str, Any]]) -> dict[ObjectKey, str]:
        kinds = sorted({o["kind"].lower() for o in objects})
        found: dict[ObjectKey, str] = {}
        proc = kubectl.run("get", ",".join(kinds), "-A", "-o", "json", "--ignore-not-found", timeout_s=60)
        if proc.returncode == 0 and proc.stdout.strip():
            for item in json.loads(proc.stdout).get("items", []):
                found[object_key(item)] = revision(item)
        return found

    def _wait_ready(self, kubectl: Kubectl, objects: list[dict[str, Any]]) -> list[WorkloadState]:
        wanted = {object_key(o) for o in objects if o["kind"] in WAITED_KINDS}
        states: dict[ObjectKey, WorkloadState] = {}
        shown: list[str] = []

        def probe() -> tuple[bool, str | None]:
            data = kubectl.get_json("deployment,statefulset,job", "-A") or {}
            for item in data.get("items", []):
                if object_key(item) in wanted:
                    states[object_key(item)] = workload_state(item)
            waiting = sorted(f"{s.kind.lower()}/{s.name} {s.ready}/{s.desired}" for s in states.values()
                             if not s.done)
            complete = len(states) == len(wanted) and not waiting
            state = f"{len(wanted) - len(waiting)}/{len(wanted)} ready; waiting: {', '.join(waiting) or '-'}"
            if not complete and state not in shown:  # each change of what is still waiting, once
                shown.append(state)
                self.progress.info(f"  {state}")
            return complete, state

        try:
            self.progress.wait_until(f"{len(wanted)} workloads Ready", probe, timeout_s=self.settings.ready_timeout_s,
                                     interval_s=2.0)
        except WaitTimeout as exc:
            error = NotReady(self._not_ready_details(kubectl, objects, states), self.settings.ready_timeout_s)
            error.states = [states[k] for k in sorted(states)]
            raise error from exc
        return [states[k] for k in sorted(states)]

    @staticmethod
    def _not_ready_details(kubectl: Kubectl, objects: list[dict[str, Any]],
                           states: dict[ObjectKey, WorkloadState]) -> list[str]:
        details: list[str] = []
        for doc in objects:
            key = object_key(doc)
            state = states.get(key)
            if doc["kind"] not in WAITED_KINDS or (state is not None and state.done):
                continue
            labels = (doc["spec"].get("selector") or {}).get("matchLabels") or \
                doc["spec"]["template"]["metadata"].get("labels", {})
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
            pods = (kubectl.get_json("pods", "-n", key[1], "-l", selector) or {}).get("items", [])
            events = (kubectl.get_json("events", "-n", key[1], "--field-selector", "type=Warning") or {}).get(
                "items", [])
            ready = f"{state.ready}/{state.desired}" if state else "not found"
            details.append(f"{key[0]} {key[1]}/{key[2]} ({ready}): "
                           + (" | ".join(pod_problems(pods, events)) or "no pods"))
        return details

