"""Assumed-role clients (responder.aws.clients) on the in-memory AWS: an hour-long session (the role-chaining cap),
refreshed before it expires, so a call made after the original credentials expired still succeeds; a refusal at a
refresh is still AccountAccessError. Expiry is enforced by state_machines/gaps_sts.py and moved by
local.time_passes."""
from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError

from responder.aws import clients
from responder.errors import AccountAccessError
from state_machines import local

MEMBER = "444455556666"
REGION = "eu-west-1"
ROLE = "ir-responder-member"
SETTINGS = SimpleNamespace(member_role_name=ROLE, external_id="")


@pytest.fixture
def world():
    with local.aws(region=REGION):
        iam = local.session(MEMBER, REGION).client("iam")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                          "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust), MaxSessionDuration=3600)
        yield iam


def member(service="ec2", label="IR-1"):
    return clients.member_client(service, account=MEMBER, region=REGION, partition="aws", label=label,
                                 settings=SETTINGS)


def assume_calls() -> list:
    """The AssumeRole calls the responder makes from now on (its own STS client)."""
    calls: list = []
    clients.client("sts", REGION).meta.events.register("after-call.sts.AssumeRole",
                                                       lambda **kwargs: calls.append(kwargs["model"].name))
    return calls


def test_the_session_lasts_the_hour_role_chaining_allows(world):
    calls = assume_calls()
    member().describe_instances()
    expiry = clients.role_credentials(f"arn:aws:iam::{MEMBER}:role/{ROLE}", region=REGION, label="IR-1")._expiry_time
    left = (expiry - clients._now()).total_seconds()
    assert 3500 < left <= 3600
    member("iam").get_role(RoleName=ROLE)
    member("ec2").describe_instances()
    assert len(calls) == 1  # one AssumeRole per role and incident, shared by its clients


def test_a_longer_session_than_the_role_allows_is_refused_as_aws_does(world):
    sts = boto3.client("sts", region_name=REGION)
    with pytest.raises(ClientError, match="MaxSessionDuration"):
        sts.assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/{ROLE}", RoleSessionName="long", DurationSeconds=7200)


def test_static_credentials_past_their_expiry_are_refused(world):
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{MEMBER}:role/{ROLE}", RoleSessionName="old", DurationSeconds=3600)["Credentials"]
    static = boto3.client("ec2", region_name=REGION, aws_access_key_id=creds["AccessKeyId"],
                          aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    static.describe_instances()
    with local.time_passes(3700):
        with pytest.raises(ClientError, match="ExpiredToken"):
            static.describe_instances()


@pytest.mark.parametrize("seconds", [3100, 3700])  # inside botocore's refresh window, and past the expiry
def test_a_call_after_the_session_would_have_expired_succeeds_after_a_refresh(world, seconds):
    ec2 = member()
    ec2.describe_instances()
    calls = assume_calls()
    with local.time_passes(seconds):
        ec2.describe_instances()  # same client, mid-invocation
        member("ebs")  # a client made later shares the refreshed session
        ec2.describe_instances()
    assert len(calls) == 1


def test_a_refusal_at_refresh_is_account_access(world):
    ec2 = member()
    ec2.describe_instances()
    world.delete_role(RoleName=ROLE)  # the member stack was removed meanwhile
    with local.time_passes(3700):
        with pytest.raises(AccountAccessError, match="AccessDenied"):
            ec2.describe_instances()
