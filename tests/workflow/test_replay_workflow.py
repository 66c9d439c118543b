"""Replays: the same finding twice changes nothing the second time."""

from __future__ import annotations

import json
import uuid

import pytest

from state_machines import local
from tests.workflow_world import access_key_event, event, iam_state

MEMBER, FORENSICS, REGION = "444455556666", "999988887777", "eu-west-1"


@pytest.fixture(scope="module")
def dep():
    with local.aws(region=REGION):
        yield local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)


def new_user(dep, keys=2):
    iam = dep.client("iam")
    name = f"user-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    return name, [iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"] for _ in range(keys)]


def test_the_same_finding_twice_changes_nothing_the_second_time(dep):
    name, keys = new_user(dep)
    ev = access_key_event(account=MEMBER, region=REGION, user_type="IAMUser", name=name, key=keys[0])
    first = local.execute(ev, dep)
    assert first.output["outcome"] == "contained"
    after_first = iam_state(dep.client("iam"))
    ev["detail"]["service"]["count"] = 2  # GuardDuty re-publishes the finding with a higher count
    second = local.execute(ev, dep)
    assert second.status == "SUCCEEDED", second.cause
    assert second.output["outcome"] in ("duplicate", "contained")
    assert iam_state(dep.client("iam")) == after_first
