"""The error policy at its call sites, on moto: each service's real error strings are recorded as the step's failure
(the action goes on), its transient codes raise TransientAwsError (Step Functions retries the task), and a bug is
never swallowed. Where moto has no error for a call (Auto Scaling, Classic ELB, EBS direct APIs), the real client
is made to answer with the code, parsed by botocore exactly as an AWS error response."""
from __future__ import annotations

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from responder import finalize, records
from responder.aws import clients
from responder.aws.dynamodb import IncidentTable
from responder.aws.s3 import EvidenceObjects
from responder.aws.sns import Topic
from responder.aws.stepfunctions import Executions
from responder.errors import AccountAccessError, IncidentRecordError, TransientAwsError
from responder.journal import Journal

REGION = "us-east-1"
INSTANCE = "i-0123456789abcdef0"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef"


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        clients.reset()
        yield lambda service: boto3.client(service, region_name=REGION)
        clients.reset()


def answer(client, operation: str, code: str, status: int) -> None:
    """Make the real `client` receive this AWS error for `operation` (botocore builds the exception itself)."""
    def respond(**_):
        return (AWSResponse("https://aws.invalid", status, {}, None),
                {"Error": {"Code": code, "Message": "answered by the test"},
                 "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "test"}})
    client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}",
                                respond)


def step(journal: Journal, client, operation: str, **params):
    """One journalled step making one change, as every task does."""
    with journal.step("the_step", "target"):
        journal.call(client, operation, target="target", **params)
    with journal.step("independent_step", "target"):
        journal.note("unchanged", "target")


# -- moto's own error strings are recorded, the action goes on -------------------------------------------------------
@pytest.mark.parametrize("service,operation,params,code", [
    ("iam", "attach_user_policy", {"UserName": "ghost", "PolicyArn": "arn:aws:iam::aws:policy/AWSDenyAll"},
     "NoSuchEntity"),
    ("ec2", "modify_instance_attribute", {"InstanceId": INSTANCE, "DisableApiTermination": {"Value": True}},
     "InvalidInstanceID.NotFound"),
    ("ec2", "create_snapshots", {"InstanceSpecification": {"InstanceId": INSTANCE}}, "InvalidInstanceID.NotFound"),
    ("elbv2", "deregister_targets", {"TargetGroupArn": TARGET_GROUP, "Targets": [{"Id": INSTANCE}]},
     "TargetGroupNotFound"),
    ("s3", "put_object", {"Bucket": "no-such-evidence-bucket", "Key": "k", "Body": b"x"}, "NoSuchBucket"),
    ("sns", "publish", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:ghost", "Message": "x"}, "NotFound"),
    ("kms", "describe_key", {"KeyId": "alias/ghost"}, "NotFoundException"),
])
def test_a_real_aws_refusal_fails_only_its_step(aws, service, operation, params, code):
    journal = Journal()
    step(journal, aws(service), operation, **params)
    assert [(e["step"], e["status"], e.get("error")) for e in journal.entries] == [
        ("the_step", "failed", code), ("independent_step", "unchanged", None)]


# -- each service's transient codes are retried, its quotas recorded -------------------------------------------------
@pytest.mark.parametrize("service,operation,params,code,status", [
    ("iam", "AttachUserPolicy", {"UserName": "u", "PolicyArn": "arn:aws:iam::aws:policy/AWSDenyAll"},
     "ServiceFailure", 500),
    ("iam", "AttachUserPolicy", {"UserName": "u", "PolicyArn": "arn:aws:iam::aws:policy/AWSDenyAll"},
     "Throttling", 400),
    ("ec2", "CreateSnapshots", {"InstanceSpecification": {"InstanceId": INSTANCE}}, "EC2ThrottledException", 503),
    ("ec2", "CreateSnapshots", {"InstanceSpecification": {"InstanceId": INSTANCE}}, "Unavailable", 503),
    ("ec2", "CreateSnapshots", {"InstanceSpecification": {"InstanceId": INSTANCE}}, "RequestLimitExceeded", 503),
    ("elb", "DeregisterInstancesFromLoadBalancer", {"LoadBalancerName": "web", "Instances": [{"InstanceId": INSTANCE}]},
     "DependencyThrottle", 400),
    ("elbv2", "DeregisterTargets", {"TargetGroupArn": TARGET_GROUP, "Targets": [{"Id": INSTANCE}]},
     "PriorRequestNotComplete", 429),
    ("autoscaling", "DetachInstances", {"AutoScalingGroupName": "web", "InstanceIds": [INSTANCE],
                                        "ShouldDecrementDesiredCapacity": False}, "ResourceContention", 500),
    ("s3", "PutObject", {"Bucket": "b", "Key": "k", "Body": b"x"}, "ConditionalRequestConflict", 409),
    ("s3", "PutObject", {"Bucket": "b", "Key": "k", "Body": b"x"}, "SlowDown", 503),
    ("dynamodb", "PutItem", {"TableName": "t", "Item": {"k": {"S": "v"}}}, "LimitExceededException", 400),
    ("sns", "Publish", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "x"}, "Throttled", 429),
    ("kms", "CreateGrant", {"KeyId": "k", "GranteePrincipal": "p", "Operations": ["Decrypt"]},
     "KMSInternalException", 500),
])
def test_a_transient_error_raises_for_a_retry(aws, service, operation, params, code, status):
    client = aws(service)
    answer(client, operation, code, status)
    method = {v: k for k, v in client.meta.method_to_api_mapping.items()}
    journal = Journal()
    with pytest.raises(TransientAwsError, match=code):
        step(journal, client, method[operation], **params)
    assert journal.entries[-1]["status"] == "failed" and journal.entries[-1]["error"] == code  # still on the timeline


@pytest.mark.parametrize("service,operation,params,code", [
    ("iam", "AttachUserPolicy", {"UserName": "u", "PolicyArn": "arn:aws:iam::aws:policy/AWSDenyAll"},
     "LimitExceeded"),
    ("ec2", "CreateSnapshots", {"InstanceSpecification": {"InstanceId": INSTANCE}}, "SnapshotLimitExceeded"),
    ("kms", "CreateGrant", {"KeyId": "k", "GranteePrincipal": "p", "Operations": ["Decrypt"]},
     "LimitExceededException"),
    ("autoscaling", "DetachInstances", {"AutoScalingGroupName": "web", "InstanceIds": [INSTANCE],
                                        "ShouldDecrementDesiredCapacity": False}, "LimitExceeded"),
])
def test_a_quota_is_recorded_not_retried(aws, service, operation, params, code):
    client = aws(service)
    answer(client, operation, code, 400)
    method = {v: k for k, v in client.meta.method_to_api_mapping.items()}
    journal = Journal()
    step(journal, client, method[operation], **params)
    assert (journal.entries[0]["status"], journal.entries[0]["error"]) == ("failed", code)


def test_a_bug_inside_a_step_is_never_swallowed(aws):
    journal = Journal()
    with pytest.raises(KeyError):
        with journal.step("the_step", "target"):
            {}["Reservations"]


# -- the other call sites --------------------------------------------------------------------------------------------
def test_records_missing_table_is_a_named_error_and_throttling_retries(aws):
    ddb = aws("dynamodb")
    with pytest.raises(IncidentRecordError, match="ResourceNotFoundException"):
        records._aws_call("dynamodb:GetItem", lambda: IncidentTable(ddb, "ghost").get("IR-1"))
    answer(ddb, "GetItem", "ProvisionedThroughputExceededException", 400)
    with pytest.raises(TransientAwsError, match="ProvisionedThroughputExceededException"):
        records._aws_call("dynamodb:GetItem", lambda: IncidentTable(ddb, "t").get("IR-1"))


def test_execution_status_answers_unknown_on_a_refusal_and_retries_on_throttling(aws):
    sfn = aws("stepfunctions")
    status = records.execution_status(Executions(sfn))
    assert status("not-an-arn") == "UNKNOWN"  # moto: InvalidArn
    answer(sfn, "DescribeExecution", "ThrottlingException", 400)
    with pytest.raises(TransientAwsError, match="ThrottlingException"):
        status("arn:aws:states:us-east-1:123456789012:execution:sm:x")


def test_finalize_records_a_refused_notification_and_retries_a_throttled_one(aws):
    sns = aws("sns")
    steps = finalize._Steps()
    steps.run("notify", lambda: Topic(sns, "arn:aws:sns:us-east-1:123456789012:ghost").publish("s", "m", {}))
    assert [(e["step"], e["error"]) for e in steps.errors] == [("notify", "NotFound")]
    answer(sns, "Publish", "Throttled", 429)
    with pytest.raises(TransientAwsError, match="Throttled"):
        steps.run("notify", lambda: Topic(sns, "arn:aws:sns:us-east-1:123456789012:ghost").publish("s", "m", {}))
    s3 = aws("s3")
    steps.run("manifest", lambda: EvidenceObjects(s3, "no-such-bucket").put_json("k", b"{}"))
    assert steps.errors[-1]["error"] == "NoSuchBucket"


def test_assume_role_refused_is_account_access_throttled_is_transient(aws):
    sts = clients.client("sts", REGION)
    answer(sts, "AssumeRole", "AccessDenied", 403)
    with pytest.raises(AccountAccessError, match="AccessDenied"):
        clients.role_credentials("arn:aws:iam::111111111111:role/ir-member", region=REGION, label="IR-1")
    clients.reset()
    sts = clients.client("sts", REGION)
    answer(sts, "AssumeRole", "Throttling", 400)
    with pytest.raises(TransientAwsError, match="Throttling"):
        clients.role_credentials("arn:aws:iam::111111111111:role/ir-member", region=REGION, label="IR-1")
