"""Infrastructure alerts: scrape targets down, CPU, memory, restarts and the database pool (SPEC §6 rules 14–18).

Three rules read container resources, which exist only on Kubernetes. On the ``local`` target (backend
services as plain processes) they read the standard ``process_*`` collector of each backend process instead:

* BackendHighCPU — ``rate(process_cpu_seconds_total)`` against ``local_limits.cpu_cores`` (default one core);
* BackendHighMemory — ``process_resident_memory_bytes`` against ``local_limits.memory_bytes``;
* BackendPodRestartLoop — ``changes(process_start_time_seconds)`` per minute: a process that was restarted
  (by hand or by a supervisor) exposes a new start time.
"""

from __future__ import annotations

from dataclasses import dataclass

from gxlib.monitoring.alerts.rule import (
    CONTAINER,
    INSTANCE,
    JOB,
    NAMESPACE,
    AlertRule,
    DeploymentTarget,
    Severity,
    number,
    value,
)
from gxlib.monitoring.catalog import series
from gxlib.monitoring.settings import MonitoringConfig

ALERT_NAMES: tuple[str, ...] = (
    "BackendServiceDown",
    "BackendHighCPU",
    "BackendHighMemory",
    "BackendPodRestartLoop",
    "DatabaseConnectionPoolExhausted",
)


@dataclass(frozen=True)
class ResourceUsage:
    """What the resource alerts read on one target: three percentages/rates and the words that name them."""

    cpu_percent: str
    memory_percent: str
    restarts_per_minute: str
    where: str  # the container or process, as the annotations name it
    cpu_of: str
    memory_of: str


def resource_usage(config: MonitoringConfig, target: DeploymentTarget) -> ResourceUsage:
    """The resource series of a backend container (Kubernetes) or a backend process (local)."""
    if target is DeploymentTarget.KUBERNETES:
        containers = config.selectors.backend_containers
        by_container = "sum by (namespace, pod, container)"
        cpu_limit, memory_limit = 'resource="cpu"', 'resource="memory"'
        return ResourceUsage(
            cpu_percent=(f"{by_container} (rate({series('container_cpu_usage_seconds_total', containers)}[5m])) "
                         f"/ {by_container} ({series('kube_pod_container_resource_limits', cpu_limit, containers)})"
                         " * 100"),
            memory_percent=(f"{by_container} ({series('container_memory_working_set_bytes', containers)}) "
                            f"/ {by_container} "
                            f"({series('kube_pod_container_resource_limits', memory_limit, containers)}) * 100"),
            restarts_per_minute=f"rate({series('kube_pod_container_status_restarts_total', containers)}[15m]) * 60",
            where=f"container {CONTAINER} in {NAMESPACE}",
            cpu_of="of its CPU limit",
            memory_of="of its memory limit",
        )
    jobs = config.selectors.backend_jobs
    limits = config.local_limits
    window = limits.restart_window_minutes
    return ResourceUsage(
        cpu_percent=f"rate({series('process_cpu_seconds_total', jobs)}[5m]) * 100 / {number(limits.cpu_cores)}",
        memory_percent=f"{series('process_resident_memory_bytes', jobs)} * 100 / {limits.memory_bytes}",
        restarts_per_minute=f"changes({series('process_start_time_seconds', jobs)}[{window}m]) / {window}",
        where=f"process {JOB} at {INSTANCE} in {NAMESPACE}",
        cpu_of=f"of {number(limits.cpu_cores)} CPU core(s)",
        memory_of=f"of its {limits.memory_bytes // (1024 * 1024)} MiB memory budget",
    )


def infrastructure_rules(config: MonitoringConfig, target: DeploymentTarget) -> list[AlertRule]:
    """The infrastructure alerts for ``target``, in SPEC §6 order."""
    t = config.thresholds
    backend = config.selectors.backend_series
    usage = resource_usage(config, target)
    where = usage.where
    return [
        AlertRule(
            "BackendServiceDown", f"{series('up', config.selectors.backend_jobs)} == 0", "1m", Severity.CRITICAL,
            "platform",
            f"Backend target {JOB} in {NAMESPACE} is down",
            f"Prometheus cannot scrape {JOB} at {INSTANCE} in {NAMESPACE} (up = {value(0)}).",
        ),
        AlertRule(
            "BackendHighCPU", f"{usage.cpu_percent} > {number(t.cpu_percent)}", "5m", Severity.WARNING, "platform",
            f"Backend {where} uses more than {number(t.cpu_percent)}% CPU",
            f"The backend {where} uses {value(1)}% {usage.cpu_of} (warning above {number(t.cpu_percent)}%).",
        ),
        AlertRule(
            "BackendHighMemory", f"{usage.memory_percent} > {number(t.memory_percent_of_limit)}", "5m",
            Severity.WARNING, "platform",
            f"Backend {where} is close to its memory limit",
            f"The backend {where} uses {value(1)}% {usage.memory_of} "
            f"(warning above {number(t.memory_percent_of_limit)}%).",
        ),
        AlertRule(
            "BackendPodRestartLoop", f"{usage.restarts_per_minute} > {number(t.restarts_per_minute)}", "5m",
            Severity.WARNING, "platform",
            f"Backend {where} is restarting repeatedly",
            f"The backend {where} restarts {value(2)} times per minute "
            f"(warning above {number(t.restarts_per_minute)}).",
        ),
        AlertRule(
            "DatabaseConnectionPoolExhausted",
            f"{series('db_pool_connections_in_use', backend)} >= {series('db_pool_connections_max', backend)}",
            "2m", Severity.CRITICAL, "database",
            f"Database connection pool of {JOB} in {NAMESPACE} is exhausted",
            f"{JOB} at {INSTANCE} in {NAMESPACE} has all {value(0)} pool connections in use; "
            "requests wait for a connection.",
        ),
    ]
