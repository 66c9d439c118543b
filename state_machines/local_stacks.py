"""What the three CDK stacks create, created with boto3 in the in-memory AWS (used by `local.deploy`).

Names, environment and permissions come from the same sources the CDK stacks read (`stacks.catalog`,
`responder.settings`, `responder.permissions`); tests compare the synthesized templates with what is made here.
Every function is create-or-reuse, so deploying twice in one in-memory AWS works.
"""
from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from botocore.exceptions import ClientError

from responder import permissions
from responder.settings import (  # noqa: F401 - re-exported for local.deploy
    DEFAULT_QUARANTINE_POLICY,
    DENY_ALL_PROFILE,
    FORENSICS_ROLE_NAME,
    MEMBER_ROLE_NAME,
    PROTECTED_TAG,
    SHARING_KEY_ALIAS,
)
from stacks.catalog import ASL_PATH, FUNCTIONS, STATE_MACHINE_NAME

FUNCTION_ROLE_NAME = "ir-responder-functions"
STATE_MACHINE_ROLE_NAME = "ir-responder-state-machine"
TABLE_NAME = "ir-responder-incidents"
TOPIC_NAME = "ir-responder-incidents"
FORENSICS_KEY_ALIAS = "alias/ir-forensics-evidence"
DENY_ALL_ROLE_NAME = "ir-responder-quarantine-deny-all"


def _exists(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] in (
        "EntityAlreadyExists", "ResourceInUseException", "ResourceConflictException", "BucketAlreadyOwnedByYou",
        "AlreadyExistsException", "StateMachineAlreadyExists",
    )


def _role(iam: Any, name: str, trust: dict, policy: dict | None = None, *, policy_name: str = "permissions") -> str:
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except ClientError as exc:
        if not _exists(exc):
            raise
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    if policy is not None:
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return arn


def _allow(actions: tuple[str, ...]) -> dict:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions) or ["none:null"], "Resource": "*"}]}


def _key(kms: Any, alias: str, policy: dict, description: str) -> str:
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
    except ClientError:
        pass
    key = kms.create_key(Description=description, Policy=json.dumps(policy), KeyUsage="ENCRYPT_DECRYPT")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyMetadata"]["KeyId"])
    kms.enable_key_rotation(KeyId=key["KeyMetadata"]["KeyId"])
    return key["KeyMetadata"]["Arn"]


def responder_trust(security_account: str) -> dict:
    """Trust of the member and forensics roles: only the responder's own roles in the security account."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{security_account}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{security_account}:role/ir-responder-*"}},
        }],
    }


def member_stack(sess: Any, *, region: str, security_account: str, forensics_account: str,
                 external_id: str) -> dict[str, str]:
    iam, kms = sess.client("iam"), sess.client("kms", region_name=region)
    account = sess.client("sts").get_caller_identity()["Account"]
    trust = responder_trust(security_account)
    trust["Statement"][0]["Condition"]["StringEquals"] = {"sts:ExternalId": external_id}
    role_arn = _role(iam, MEMBER_ROLE_NAME, trust, _allow(permissions.member_actions()))

    deny_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    ec2_trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    _role(iam, DENY_ALL_ROLE_NAME, ec2_trust, deny_all, policy_name="deny-all")
    try:
        iam.create_instance_profile(InstanceProfileName=DENY_ALL_PROFILE)
        iam.add_role_to_instance_profile(InstanceProfileName=DENY_ALL_PROFILE, RoleName=DENY_ALL_ROLE_NAME)
    except ClientError as exc:
        if not _exists(exc):
            raise

    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AccountAdmin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "ForensicsCopyThroughEc2", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{forensics_account}:root"},
             "Action": ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext",
                        "kms:ReEncryptFrom"],
             "Resource": "*",
             "Condition": {"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}}},
        ],
    }
    sharing_key = _key(kms, SHARING_KEY_ALIAS, key_policy, "Evidence sharing key: the forensics account may use it only through EC2")
    return {"role_arn": role_arn, "sharing_key_arn": sharing_key}


def forensics_stack(sess: Any, *, region: str, security_account: str, member_accounts: tuple[str, ...]) -> dict[str, str]:
    iam, kms, s3 = sess.client("iam"), sess.client("kms", region_name=region), sess.client("s3", region_name=region)
    account = sess.client("sts").get_caller_identity()["Account"]
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ForensicsAccountOnly", "Effect": "Allow",
                       "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}],
    }
    key_arn = _key(kms, FORENSICS_KEY_ALIAS, key_policy, "Forensics evidence key: no production account can use it")
    role_arn = _role(iam, FORENSICS_ROLE_NAME, responder_trust(security_account), _allow(permissions.forensics_actions()))
    bucket = f"ir-evidence-{account}-{region}"
    try:
        params: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
        if region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**params)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]})
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    except ClientError as exc:
        if not _exists(exc):
            raise
    return {"role_arn": role_arn, "key_arn": key_arn, "bucket": bucket}


def responder_stack(sess: Any, *, region: str) -> dict[str, str]:
    iam, ddb, sns = sess.client("iam"), sess.client("dynamodb", region_name=region), sess.client("sns", region_name=region)
    lambda_trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    sfn_trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    function_role = _role(iam, FUNCTION_ROLE_NAME, lambda_trust, _allow(permissions.responder_actions() + ("sts:AssumeRole",)))
    sm_role = _role(iam, STATE_MACHINE_ROLE_NAME, sfn_trust, _allow(("lambda:InvokeFunction",)))
    try:
        ddb.create_table(TableName=TABLE_NAME, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "incidentId", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "incidentId", "KeyType": "HASH"}])
    except ClientError as exc:
        if not _exists(exc):
            raise
    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    return {"table_name": TABLE_NAME, "topic_arn": topic_arn, "function_role_arn": function_role,
            "state_machine_role_arn": sm_role}


def _code_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "The local runtime runs the handlers from the lambdas/ folder in-process.")
    return buf.getvalue()


def functions_and_state_machine(sess: Any, *, region: str, environment: dict[str, str], role_arn: str,
                                state_machine_role_arn: str) -> tuple[dict[str, str], str]:
    lam, sfn = sess.client("lambda", region_name=region), sess.client("stepfunctions", region_name=region)
    arns: dict[str, str] = {}
    for spec in FUNCTIONS:
        config = dict(FunctionName=spec.function_name, Runtime="python3.13", Role=role_arn, Handler=spec.handler,
                      Timeout=spec.timeout_seconds, MemorySize=spec.memory_mb, Description=spec.description,
                      Environment={"Variables": environment}, Architectures=["arm64"])
        try:
            arns[spec.key] = lam.create_function(Code={"ZipFile": _code_zip()}, **config)["FunctionArn"]
        except ClientError as exc:
            if not _exists(exc):
                raise
            config.pop("Architectures")
            arns[spec.key] = lam.update_function_configuration(**config)["FunctionArn"]
    definition = ASL_PATH.read_text()
    for spec in FUNCTIONS:
        definition = definition.replace("${%s}" % spec.substitution, arns[spec.key])
    existing = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                if m["name"] == STATE_MACHINE_NAME]
    if existing:
        sfn.update_state_machine(stateMachineArn=existing[0], definition=definition, roleArn=state_machine_role_arn)
        return arns, existing[0]
    sm = sfn.create_state_machine(name=STATE_MACHINE_NAME, definition=definition, roleArn=state_machine_role_arn,
                                  type="STANDARD")
    return arns, sm["stateMachineArn"]
