"""Reliability: a corpus of bad inputs. Each ends with a clear, named error (InvalidInput naming the field) or a
recorded "not handled", and the in-memory AWS is unchanged, compared resource by resource before and after."""
from __future__ import annotations

import copy
import json
import os
from unittest import mock

import pytest

from state_machines import local
from tests.worlds.workflow import FIXTURES, iam_state

MEMBER, REGION = "444455556666", "eu-west-1"
BASE = json.loads((FIXTURES / "guardduty-iam-user.json").read_text())
INSTANCE = json.loads((FIXTURES / "guardduty-instance.json").read_text())
MANUAL = {"accountId": MEMBER, "region": REGION, "reason": "r", "iamUsers": ["victim"]}


def ev(path: str, value, base=BASE):
    """BASE with the value at dotted `path` replaced (value DELETE removes it)."""
    doc = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = doc
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()

INVALID = [  # (case id, input, field named in the error)
    ("empty-object", {}, "$"),
    ("null", None, "$"),
    ("list", [BASE], "$"),
    ("string", "GuardDuty Finding", "$"),
    ("number", 42, "$"),
    ("unknown-shape", {"finding": BASE["detail"]}, "$"),
    ("wrong-source", ev("source", "aws.securityhub"), "source"),
    ("wrong-detail-type", ev("detail-type", "Security Hub Findings - Imported"), "detail-type"),
    ("source-null", ev("source", None), "source"),
    ("detail-missing", ev("detail", DELETE), "detail"),
    ("detail-string", ev("detail", "{}"), "detail"),
    ("id-missing", ev("detail.id", DELETE), "detail.id"),
    ("id-injection", ev("detail.id", "abc'; DROP TABLE incidents;--"), "detail.id"),
    ("id-too-long", ev("detail.id", "a" * 500), "detail.id"),
    ("account-short", ev("detail.accountId", "4444"), "detail.accountId"),
    ("account-number", ev("detail.accountId", 444455556666), "detail.accountId"),
    ("account-letters", ev("detail.accountId", "44445555666x"), "detail.accountId"),
    ("region-bogus", ev("detail.region", "moon-base-1"), "detail.region"),
    ("region-injection", ev("detail.region", "eu-west-1\nus-east-1"), "detail.region"),
    ("partition-bogus", ev("detail.partition", "aws-mars"), "detail.partition"),
    ("type-missing", ev("detail.type", DELETE), "detail.type"),
    ("severity-string", ev("detail.severity", "8"), "detail.severity"),
    ("severity-bool", ev("detail.severity", True), "detail.severity"),
    ("severity-negative", ev("detail.severity", -1), "detail.severity"),
    ("severity-huge", ev("detail.severity", 1e9), "detail.severity"),
    ("severity-missing", ev("detail.severity", DELETE), "detail.severity"),
    ("resource-missing", ev("detail.resource", DELETE), "detail.resource"),
    ("resource-list", ev("detail.resource", []), "detail.resource"),
    ("resource-type-missing", ev("detail.resource.resourceType", DELETE), "detail.resource.resourceType"),
    ("resource-type-number", ev("detail.resource.resourceType", 7), "detail.resource.resourceType"),
    ("key-details-missing", ev("detail.resource.accessKeyDetails", DELETE), "detail.resource.accessKeyDetails"),
    ("user-type-missing", ev("detail.resource.accessKeyDetails.userType", DELETE),
     "detail.resource.accessKeyDetails.userType"),
    ("user-name-missing", ev("detail.resource.accessKeyDetails.userName", DELETE),
     "detail.resource.accessKeyDetails.userName"),
    ("user-name-injection", ev("detail.resource.accessKeyDetails.userName", "ci-deployer*"),
     "detail.resource.accessKeyDetails.userName"),
    ("user-name-path", ev("detail.resource.accessKeyDetails.userName", "../../admin"),
     "detail.resource.accessKeyDetails.userName"),
    ("access-key-lowercase", ev("detail.resource.accessKeyDetails.accessKeyId", "akia-bad"),
     "detail.resource.accessKeyDetails.accessKeyId"),
    ("count-string", ev("detail.service.count", "2"), "detail.service.count"),
    ("service-list", ev("detail.service", []), "detail.service"),
    ("instance-id-bad", ev("detail.resource.instanceDetails.instanceId", "i-XYZ; rm -rf", base=INSTANCE),
     "detail.resource.instanceDetails.instanceId"),
    ("instance-details-missing", ev("detail.resource.instanceDetails", DELETE, base=INSTANCE),
     "detail.resource.instanceDetails"),
    ("findings-two", {"Findings": [BASE["detail"], BASE["detail"]]}, "Findings"),
    ("findings-empty", {"Findings": []}, "Findings"),
    ("manual-not-object", {"manual": "contain everything"}, "manual"),
    ("manual-extra-top-key", {"manual": MANUAL, "dryRun": True}, "dryRun"),
    ("manual-unknown-key", {"manual": {**MANUAL, "deleteUser": True}}, "manual.deleteUser"),
    ("manual-no-targets", {"manual": {k: v for k, v in MANUAL.items() if k != "iamUsers"}}, "manual.iamUsers"),
    ("manual-no-reason", {"manual": {k: v for k, v in MANUAL.items() if k != "reason"}}, "manual.reason"),
    ("manual-empty-reason", {"manual": {**MANUAL, "reason": ""}}, "manual.reason"),
    ("manual-users-string", {"manual": {**MANUAL, "iamUsers": "victim"}}, "manual.iamUsers"),
    ("manual-user-wildcard", {"manual": {**MANUAL, "iamUsers": ["*"]}}, "manual.iamUsers[0]"),
    ("manual-role-arn", {"manual": {**MANUAL, "roles": ["arn:aws:iam::1:role/x"]}}, "manual.roles[0]"),
    ("manual-instance-bad", {"manual": {**MANUAL, "instances": ["vol-0123456789abcdef0"]}}, "manual.instances[0]"),
    ("manual-too-many", {"manual": {**MANUAL, "iamUsers": [f"u{i}" for i in range(51)]}}, "manual.iamUsers"),
    ("manual-dryrun-string", {"manual": {**MANUAL, "dryRun": "false"}}, "manual.dryRun"),
    ("manual-incident-injection", {"manual": {**MANUAL, "incidentId": "IR-1 OR 1=1"}}, "manual.incidentId"),
    ("manual-account-missing", {"manual": {k: v for k, v in MANUAL.items() if k != "accountId"}}, "manual.accountId"),
    ("huge-reason", {"manual": {**MANUAL, "reason": "x" * 5000}}, "manual.reason"),
]

NOT_HANDLED = [
    ("s3-finding", ev("detail.resource", {"resourceType": "S3Bucket"})),
    ("eks-finding", ev("detail.resource", {"resourceType": "EKSCluster"})),
    ("unknown-resource", ev("detail.resource", {"resourceType": "Teapot"})),
    ("low-severity", ev("detail.severity", 2.0)),
    ("archived", ev("detail.service.archived", True)),
    ("sample", ev("detail.service.additionalInfo", {"sample": True})),
    ("sample-instance", ev("detail.resource.instanceDetails.instanceId", "i-99999999", base=INSTANCE)),
]


def aws_state(dep) -> str:
    """The resources containment could change, serialised for a byte-for-byte comparison."""
    ec2 = dep.client("ec2")
    state = {
        "iam": iam_state(dep.client("iam")),
        "groups": ec2.describe_security_groups()["SecurityGroups"],
        "instances": ec2.describe_instances()["Reservations"],
        "snapshots": ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"],
    }
    return json.dumps(state, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def world():
    # no default AMIs: their thousands of snapshots would make every before/after read slow
    with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}), local.aws(region=REGION):
        dep = local.deploy(member_account=MEMBER, region=REGION)
        iam = dep.client("iam")
        iam.create_user(UserName="ci-deployer")
        iam.create_user(UserName="victim")
        iam.create_access_key(UserName="ci-deployer")
        yield dep


def test_the_corpus_is_large_enough():
    assert len(INVALID) + len(NOT_HANDLED) >= 40


@pytest.mark.parametrize("case, bad, field", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_input_is_named_and_changes_nothing(world, case, bad, field):
    before = aws_state(world)
    run = local.execute(bad, world)
    assert run.status == "FAILED" and run.error == "InvalidInput", (case, run.output)
    assert json.loads(run.cause)["errorMessage"].split(":")[0] == field
    assert run.states == ["Triage", "RejectInput"]
    assert aws_state(world) == before


@pytest.mark.parametrize("case, finding", NOT_HANDLED, ids=[c[0] for c in NOT_HANDLED])
def test_unhandled_findings_are_recorded_and_change_nothing(world, case, finding):
    finding = copy.deepcopy(finding)
    finding["detail"]["id"] = f"nothandled{abs(hash(case)) % 10**12:012d}"  # each case its own finding
    before = aws_state(world)
    run = local.execute(finding, world)
    assert run.status == "SUCCEEDED", (case, run.cause)
    assert run.output["outcome"] == "not_handled" and run.output["dispositionReason"]
    assert "Contain" not in run.states
    assert aws_state(world) == before


def test_a_large_but_valid_finding_is_handled_without_copying_its_bulk(world):
    big = ev("detail.description", "x" * 200_000)
    big["detail"]["resource"]["accessKeyDetails"]["userName"] = "ci-deployer"
    run = local.execute(big, world)
    assert run.status == "SUCCEEDED", run.cause
    assert len(json.dumps(run.output)) < 20_000
