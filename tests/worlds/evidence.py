"""A small world for the evidence tests: an instance with an unencrypted root volume, a volume under the default
aws/ebs key and a volume under a workload's own customer managed key, in a member account of the in-memory AWS.

Independent of the isolation work on purpose: only EC2/KMS calls that build the scene, and readers of the result.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest

from tests.worlds.deployment import deployment

MEMBER = "444455556666"
FORENSICS = "999988887777"
REGION = "eu-west-1"
AMI = "ami-0abcdef1234567890"


@dataclass
class EvidenceInstance:
    instance_id: str
    volumes: dict[str, str] = field(default_factory=dict)  # kind -> volume id (root, aws-ebs, customer)
    customer_key: str | None = None


# No default AMIs: the world registers its own image (tests.worlds.deployment).
dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION, default_amis=False)


@pytest.fixture(autouse=True)
def fresh_hooks(dep):
    """The EBS gap's test hooks (tampered listings, failing snapshots, pending polls) never leak between tests."""
    from state_machines import gaps_ebs

    gaps_ebs.reset()
    yield
    gaps_ebs.reset()


def workload_key(dep: Any, account: str | None = None) -> str:
    """A workload's own KMS key: its policy names only its own account (the default key policy)."""
    kms = dep.client("kms", account)
    return kms.create_key(Description="workload data key")["KeyMetadata"]["Arn"]


def build_instance(dep: Any, *, kinds: tuple[str, ...] = ("aws-ebs", "customer"), account: str | None = None,
                   sizes: dict[str, int] | None = None) -> EvidenceInstance:
    """An instance whose root volume is unencrypted, plus one attached volume per kind in `kinds`."""
    ec2 = dep.client("ec2", account)
    zone = f"{dep.region}a"
    sizes = {"root": 4, "aws-ebs": 6, "customer": 5, **(sizes or {})}
    instance = ec2.run_instances(
        ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", Placement={"AvailabilityZone": zone},
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": sizes["root"]}}],
    )["Instances"][0]
    result = EvidenceInstance(instance["InstanceId"])
    result.volumes["root"] = next(m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"])
    for device, kind in zip(("/dev/sdf", "/dev/sdg", "/dev/sdh"), kinds):
        params: dict[str, Any] = {"Size": sizes[kind], "AvailabilityZone": zone}
        if kind == "aws-ebs":
            params["Encrypted"] = True
        elif kind == "customer":
            result.customer_key = result.customer_key or workload_key(dep, account)
            params.update(Encrypted=True, KmsKeyId=result.customer_key)
        volume = ec2.create_volume(**params)["VolumeId"]
        ec2.attach_volume(VolumeId=volume, InstanceId=result.instance_id, Device=device)
        result.volumes[kind] = volume
    return result


def manual_request(instance_id: str, incident_id: str, *, account: str = MEMBER, region: str = REGION,
                   dry_run: bool = False) -> dict:
    return {"manual": {"accountId": account, "region": region, "reason": "evidence test",
                       "instances": [instance_id], "incidentId": incident_id, "dryRun": dry_run}}


def finalize_output(run: Any) -> dict:
    """The Finalize task's output (the incident summary), read from the history: available whether the execution
    succeeded or failed (isolation is another team's work and may fail in this world)."""
    for event in reversed(run.events):
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Finalize":
            return json.loads(details["output"])
    raise AssertionError(f"Finalize never ran: {run.status} {run.error} {run.cause}")


def run_record(run: Any) -> dict:
    """The incident record the execution wrote (the table and the id are in its summary)."""
    from responder.aws.dynamodb import deserialize
    from state_machines import local

    where = finalize_output(run).get("record") or {}
    ddb = local.session(None, run.arn.split(":")[3]).client("dynamodb")
    item = ddb.get_item(TableName=where["table"], Key={"incidentId": {"S": where["incidentId"]}},
                        ConsistentRead=True).get("Item")
    return deserialize(item) or {}


def instance_detail(run: Any, instance_id: str | None = None) -> dict:
    """One instance as the incident shows it: its isolation and evidence summaries from the execution's output,
    over the full results the tasks stored in the incident record (``results``), with this execution's journal
    entries for the instance from the record's timeline (``entries``)."""
    items = finalize_output(run)["instances"]
    item = next((i for i in items if instance_id is None or i.get("instanceId") == instance_id), None)
    if item is None:
        raise AssertionError(f"no instance {instance_id} in the summary")
    instance_id = item["instanceId"]
    record = run_record(run)
    me = run.arn.rsplit(":", 1)[-1]
    out = {"instanceId": instance_id}
    for part in ("isolation", "evidence"):
        detail = dict((record.get("results") or {}).get(f"{part}:{instance_id}") or {})
        # the summary's status wins (a retried or failed task); its message is cut, the record has it whole
        detail.update({k: v for k, v in (item.get(part) or {}).items() if k != "message" or "message" not in detail})
        detail["entries"] = [e for e in record.get("timeline") or [] if e.get("execution") == me
                             and e.get("task") == part and e.get("subject") == instance_id]
        out[part] = detail
    return out


def identity_detail(run: Any, index: int = 0) -> dict:
    """One identity as the incident shows it: its summary in the execution's output over its full result in the
    incident record (``results``), with this execution's journal entries for it (``entries``)."""
    item = finalize_output(run)["identities"][index]
    record = run_record(run)
    me = run.arn.rsplit(":", 1)[-1]
    detail = dict((record.get("results") or {}).get(f"identity:{item.get('target')}") or {})
    detail.update(item)
    detail["entries"] = [e for e in record.get("timeline") or [] if e.get("execution") == me
                         and e.get("task") == "identity" and e.get("subject") == item.get("target")]
    return detail


def evidence_of(run: Any, instance_id: str | None = None) -> dict:
    """The evidence result of one instance (`instance_detail`)."""
    return instance_detail(run, instance_id)["evidence"]


def tags(snapshot: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("Tags") or []}


def evidence_snapshots(dep: Any, account: str, instance_id: str) -> list[dict]:
    """Snapshots in `account` whose description says they are evidence of `instance_id`."""
    ec2 = dep.client("ec2", account)
    found = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "description", "Values": [f"* instance {instance_id} evidence *"]}])["Snapshots"]
    return sorted(found, key=lambda s: s["SnapshotId"])


# -- driving the CollectEvidence task directly (integration tests) -------------------------------------------
EXECUTION_PREFIX = "arn:aws:states:{region}:123456789012:execution:ir-responder-containment:"


class TaskContext:
    """The Lambda context the handler gets; `remaining_ms` may be a callable to simulate a short invocation."""

    function_name = "ir-responder-CollectEvidence"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:ir-responder-CollectEvidence"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/ir-responder-CollectEvidence"
    log_stream_name = "local"

    def __init__(self, remaining_ms: Any = 840_000):
        self._remaining = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self._remaining() if callable(self._remaining) else self._remaining


def incident_for(instance_id: str, incident_id: str, *, region: str = REGION, account: str = MEMBER,
                 dry_run: bool = False) -> dict:
    from responder.triage import normalize

    incident = normalize(manual_request(instance_id, incident_id, account=account, region=region, dry_run=dry_run),
                         execution_name=incident_id)
    incident["executionId"] = EXECUTION_PREFIX.format(region=region) + incident_id
    return incident


def run_task(dep: Any, incident: dict, instance_id: str, evidence: dict | None = None, *,
             isolation: dict | None = None, env: dict | None = None, remaining_ms: Any = 840_000) -> dict:
    """One CollectEvidence invocation, in-process, with the deployment's function environment: the chain's state it
    returned, with ``entries`` (the journal entries it recorded, added to those of `evidence`) and ``summary``.
    `isolation` and `evidence` are given as the domain sees them (an isolation result, a previous state)."""
    import os
    from unittest import mock

    from handlers.evidence import handler
    from responder import records
    from responder.settings import settings

    previous = dict(evidence or {})
    earlier = previous.pop("entries", [])
    previous.pop("summary", None)
    isolation = isolation or {"status": "isolated"}
    event = {"incident": incident, "instanceId": instance_id,
             "isolation": {"summary": {"status": isolation.get("status")},
                           "volumes": (isolation.get("metadata") or {}).get("volumes") or [],
                           "tags": (isolation.get("metadata") or {}).get("tags") or {}},
             "evidence": {"state": previous} if previous else {"phase": "start"}}
    recorded: list[dict] = []

    def record_task(incident, *, entries, **kw):
        recorded.extend(entries)
        return True

    with mock.patch.dict(os.environ, {**dep.environment, **(env or {})}), \
            mock.patch.object(records, "record_task", record_task):
        settings.cache_clear()
        try:
            out = json.loads(json.dumps(handler(json.loads(json.dumps(event)), TaskContext(remaining_ms))))
        finally:
            settings.cache_clear()
    return dict(out["state"], entries=list(earlier) + json.loads(json.dumps(recorded, default=str)),
                summary=out["summary"])


def drive(dep: Any, incident: dict, instance_id: str, *, limit: int = 60, **kw: Any) -> list[dict]:
    """Call the task like the state machine does, until done: the list of every state it returned."""
    states: list[dict] = []
    evidence = None
    for _ in range(limit):
        evidence = run_task(dep, incident, instance_id, evidence, **kw)
        states.append(evidence)
        if evidence["done"]:
            return states
    raise AssertionError(f"evidence not done after {limit} calls: {evidence and evidence.get('phase')}")
