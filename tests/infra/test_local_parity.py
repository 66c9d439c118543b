"""What `local.deploy` creates equals what the stacks deploy: the functions' environment variable names and handler
settings, and the names, trust and permissions of the roles (so local runs cannot drift from what ships)."""
from __future__ import annotations

import json
from urllib.parse import unquote

import pytest

from responder import permissions
from responder.settings import ENV
from stacks import names, policies, tasks
from stacks.catalog import FUNCTIONS
from tests.worlds.infra import allowed_actions, multi, role_statements  # noqa: F401 - fixtures

MEMBER, FORENSICS = "444455556666", "999988887777"


@pytest.fixture(scope="module")
def deployed():
    """Function configurations and role documents from a cross-account local deployment."""
    from state_machines import local

    with local.aws(region="eu-west-1"):
        dep = local.deploy(member_account=MEMBER, forensics_account=FORENSICS, region="eu-west-1")
        lam = local.session(None, "eu-west-1").client("lambda", region_name="eu-west-1")
        functions = {spec.key: lam.get_function_configuration(FunctionName=spec.function_name) for spec in FUNCTIONS}

        def role(account, name):
            iam = local.session(account, "eu-west-1").client("iam")
            found = iam.get_role(RoleName=name)["Role"]
            policy_names = iam.list_role_policies(RoleName=name)["PolicyNames"]
            documents = [iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"] for p in policy_names]
            return {"trust": _document(found["AssumeRolePolicyDocument"]),
                    "policies": [_document(d) for d in documents],
                    "tags": {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}}

        roles = {
            "member": role(MEMBER, names.MEMBER_ROLE_NAME),
            "member_read": role(MEMBER, names.MEMBER_READ_ROLE_NAME),
            "member_release": role(MEMBER, names.MEMBER_RELEASE_ROLE_NAME),
            "forensics": role(FORENSICS, names.FORENSICS_ROLE_NAME),
            "signer": role(FORENSICS, names.SIGNER_ROLE_NAME),
            **{spec.key: role(None, names.function_role_name(spec)) for spec in FUNCTIONS},
        }
        yield {"functions": functions, "roles": roles, "deployment": dep}


def _document(raw):
    return raw if isinstance(raw, dict) else json.loads(unquote(raw))


def test_the_functions_environment_names_equal_the_templates(deployed, multi):  # noqa: F811
    for spec in FUNCTIONS:
        local_env = set(deployed["functions"][spec.key]["Environment"]["Variables"])
        shipped = multi.one(names.RESPONDER_STACK, "AWS::Lambda::Function", FunctionName=spec.function_name)
        assert local_env == set(shipped["Properties"]["Environment"]["Variables"]) == set(ENV)


def test_the_functions_handler_settings_equal_the_templates(deployed, multi):  # noqa: F811
    for spec in FUNCTIONS:
        local_fn = deployed["functions"][spec.key]
        shipped = multi.one(names.RESPONDER_STACK, "AWS::Lambda::Function",
                            FunctionName=spec.function_name)["Properties"]
        keys = ("Handler", "Runtime", "Timeout", "MemorySize", "Architectures", "Description")
        assert {k: local_fn[k] for k in keys} == {k: shipped[k] for k in keys}
        assert local_fn["Role"].rsplit("/", 1)[1] == names.function_role_name(spec)


def test_local_roles_have_the_shipped_names_trust_and_permissions(deployed):
    roles = deployed["roles"]
    assert allowed_actions(roles["member"]["policies"][0]["Statement"]) == set(permissions.member_actions())
    forensics_actions = set(permissions.forensics_actions())
    assert allowed_actions([s for p in roles["forensics"]["policies"] for s in p["Statement"]]) == forensics_actions
    assert allowed_actions([s for p in roles["signer"]["policies"] for s in p["Statement"]]) == {"kms:Sign"}
    for spec in FUNCTIONS:
        access = tasks.task_access(spec)
        declared = set(access.responder_actions)
        assume = {"sts:AssumeRole"} if access.member or access.member_read or access.member_release or access.forensics or access.signer else set()
        assert allowed_actions(roles[spec.key]["policies"][0]["Statement"]) == (
            assume | declared | policies.function_extra_actions(declared))
    assert allowed_actions(roles["member_read"]["policies"][0]["Statement"]) == set(permissions.member_read_actions())
    assert allowed_actions(roles["member_release"]["policies"][0]["Statement"]) == set(
        permissions.member_release_actions())
    for key, specs in (("member", tasks.member_tasks()), ("member_read", tasks.member_read_tasks()),
                       ("member_release", tasks.member_release_tasks()),
                       ("forensics", tasks.forensics_tasks()), ("signer", tasks.signer_tasks())):
        (trust,) = roles[key]["trust"]["Statement"]
        assert trust["Condition"] == policies.responder_trust_conditions(
            "aws", "123456789012", "ir-responder", tasks.role_arns("aws", "123456789012", specs))
        assert roles[key]["tags"] == {"ir:protected": "true"}


def test_local_and_shipped_member_policies_are_the_same_document(deployed, multi):  # noqa: F811
    from stacks.nag import flatten

    def normal(statements, account):
        out = []
        for s in statements:
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            text = [flatten(r).replace("<AWS::Partition>", "aws").replace(account, "ACCOUNT") for r in resources]
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            out.append((s["Sid"], tuple(sorted(actions)), tuple(sorted(text))))
        return sorted(out)

    shipped_stack = multi.member_stacks[0]
    shipped_account = shipped_stack.rsplit("-", 1)[1]
    shipped = role_statements(multi.one(shipped_stack, "AWS::IAM::Role", RoleName=names.MEMBER_ROLE_NAME))
    local_statements = deployed["roles"]["member"]["policies"][0]["Statement"]
    local_norm = normal(local_statements, MEMBER)
    shipped_norm = normal(shipped, shipped_account)
    # the deny-all role: a GetAtt in the template, its ARN locally
    shipped_norm = [(sid, a, ("arn:aws:iam::ACCOUNT:role/ir-responder-quarantine-deny-all",)
                     if sid == "PassOnlyTheDenyAllRole" else r) for sid, a, r in shipped_norm]
    assert local_norm == shipped_norm


def test_the_local_evidence_bucket_is_tls_only_like_the_shipped_one_and_writable_by_the_forensics_role(deployed):
    dep = deployed["deployment"]
    s3 = dep.client("s3", account=FORENSICS)
    statement, *others = json.loads(s3.get_bucket_policy(Bucket=dep.bucket)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    key_arn = dep.client("kms", account=FORENSICS).describe_key(KeyId=names.FORENSICS_KEY_ALIAS)["KeyMetadata"]["Arn"]
    assert others == policies.evidence_bucket_policy(
        partition="aws", bucket=dep.bucket, key_arn=key_arn,
        writer_arn=f"arn:aws:iam::{FORENSICS}:role/{names.FORENSICS_ROLE_NAME}",
        custodian_arn=f"arn:aws:iam::{FORENSICS}:role/{names.DEFAULT_CUSTODIAN_ROLE_NAME}")
    from botocore.exceptions import ClientError

    from state_machines import local

    with pytest.raises(ClientError):  # only the forensics role writes (gaps_s3 evaluates aws:PrincipalArn)
        s3.put_object(Bucket=dep.bucket, Key="tests/parity.json", Body=b"{}", ExpectedBucketOwner=FORENSICS)
    creds = local.session(None, dep.region).client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{FORENSICS}:role/{names.FORENSICS_ROLE_NAME}", RoleSessionName="parity",
        ExternalId=dep.environment["IR_EXTERNAL_ID"])["Credentials"]
    writer = local.session(None, dep.region).client(
        "s3", region_name=dep.region, aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    writer.put_object(Bucket=dep.bucket, Key="tests/parity.json", Body=b"{}", ExpectedBucketOwner=FORENSICS)
    retention = s3.get_object_lock_configuration(Bucket=dep.bucket)["ObjectLockConfiguration"]["Rule"][
        "DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 365)


def test_the_s3_gap_keeps_unconditional_denies(deployed):
    from botocore.exceptions import ClientError

    dep = deployed["deployment"]
    s3 = dep.client("s3", account=FORENSICS)
    logs_bucket = names.access_log_bucket(FORENSICS, dep.region)
    policy = json.loads(s3.get_bucket_policy(Bucket=logs_bucket)["Policy"])
    policy["Statement"].append({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:PutObject",
                                "Resource": f"arn:aws:s3:::{logs_bucket}/denied/*"})
    s3.put_bucket_policy(Bucket=logs_bucket, Policy=json.dumps(policy))
    s3.put_object(Bucket=logs_bucket, Key="allowed/x", Body=b"1")
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=logs_bucket, Key="denied/x", Body=b"1")
    assert denied.value.response["Error"]["Code"] in ("403", "AccessDenied")
