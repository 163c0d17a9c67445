"""When the deploy calls a workload Ready, and what it tells the operator about one that is not."""

from __future__ import annotations

from typing import Any

from gxlib.k8sdeploy.readiness import pod_problems, workload_state


def _workload(kind: str, wanted: int | None, **status: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {} if wanted is None else {"replicas": wanted}
    return {"kind": kind, "metadata": {"name": "w", "namespace": "ns", "generation": 2}, "spec": spec,
            "status": {"observedGeneration": 2, **status}}


def test_a_deployment_is_ready_when_every_replica_is_ready_and_up_to_date() -> None:
    assert workload_state(_workload("Deployment", 2, replicas=2, updatedReplicas=2, readyReplicas=2)).done
    assert not workload_state(_workload("Deployment", 2, replicas=2, updatedReplicas=2, readyReplicas=1)).done
    # a roll in progress: old and new pods both counted in replicas
    assert not workload_state(_workload("Deployment", 1, replicas=2, updatedReplicas=1, readyReplicas=2)).done


def test_a_spec_the_controller_has_not_seen_yet_is_not_ready() -> None:
    doc = _workload("Deployment", 1, replicas=1, updatedReplicas=1, readyReplicas=1)
    doc["metadata"]["generation"] = 3
    assert not workload_state(doc).done


def test_a_workload_scaled_to_zero_counts_as_done() -> None:
    state = workload_state(_workload("Deployment", 0))
    assert state.done and state.desired == 0


def test_a_statefulset_is_ready_on_its_current_revision() -> None:
    ready = _workload("StatefulSet", 1, readyReplicas=1, currentRevision="a", updateRevision="a")
    assert workload_state(ready).done
    assert not workload_state(_workload("StatefulSet", 1, readyReplicas=0, currentRevision="a",
                                        updateRevision="a")).done


def test_a_job_is_done_when_it_succeeded() -> None:
    assert workload_state(_workload("Job", None, succeeded=1)).done
    assert not workload_state(_workload("Job", None, failed=2)).done


def test_a_waiting_pod_names_its_container_reason_and_the_last_warning_about_it() -> None:
    pod = {"metadata": {"name": "cc-1"}, "status": {"phase": "Pending", "containerStatuses": [
        {"name": "chaincode", "ready": False, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}
    events = [
        {"involvedObject": {"kind": "Pod", "name": "cc-1"}, "reason": "FailedMount", "lastTimestamp": "2",
         "message": 'secret "gxtv3-chaincode-tls-org1-devnet" not found'},
        {"involvedObject": {"kind": "Pod", "name": "cc-1"}, "reason": "Old", "lastTimestamp": "1", "message": "x"},
        {"involvedObject": {"kind": "Pod", "name": "other"}, "reason": "BackOff", "lastTimestamp": "3"},
    ]
    [problem] = pod_problems([pod], events)
    assert "ContainerCreating" in problem
    assert 'FailedMount: secret "gxtv3-chaincode-tls-org1-devnet" not found' in problem and "Old" not in problem


def test_a_crashing_container_names_its_last_exit() -> None:
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Running", "containerStatuses": [
        {"name": "projector", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}
    [problem] = pod_problems([pod])
    assert "CrashLoopBackOff" in problem and "last exited 1 (Error)" in problem


def test_a_status_update_is_not_a_change_but_a_new_generation_is() -> None:
    from gxlib.k8sdeploy.deploy import revision

    pdb = {"metadata": {"generation": 1, "resourceVersion": "10"}}
    assert revision(pdb) == revision({"metadata": {"generation": 1, "resourceVersion": "11"}})
    assert revision(pdb) != revision({"metadata": {"generation": 2, "resourceVersion": "12"}})
    config_map = {"metadata": {"name": "c", "resourceVersion": "10", "managedFields": [{"manager": "platform"}]},
                  "data": {"CHAINCODE_ID": "a"}}
    taken_over = {"metadata": {"name": "c", "resourceVersion": "11", "managedFields": [{"manager": "deploy"}]},
                  "data": {"CHAINCODE_ID": "a"}}
    assert revision(config_map) == revision(taken_over), "the same content under another field manager"
    assert revision(config_map) != revision({**taken_over, "data": {"CHAINCODE_ID": "b"}})
