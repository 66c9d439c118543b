"""The responder stack (security account), read from the template the CDK CLI synthesized."""
from __future__ import annotations

import json

import pytest

from responder.settings import ENV
from stacks import names
from stacks.catalog import ASL_PATH, EVENT_PATTERN, FUNCTIONS, STATE_MACHINE_NAME
from stacks.constructs.functions import ResponderFunctions
from tests.worlds.infra import EMAIL, as_list, flat, multi, single  # noqa: F401 - fixtures

STACK = names.RESPONDER_STACK


@pytest.fixture(scope="module")
def template(multi):  # noqa: F811
    from aws_cdk.assertions import Template

    return Template.from_json(multi.template(STACK))


def test_the_rule_sends_guardduty_findings_to_the_state_machine_with_retries_and_a_dead_letter_queue(template):
    from aws_cdk.assertions import Match

    template.has_resource_properties("AWS::Events::Rule", {
        "Name": names.RULE_NAME,
        "State": "ENABLED",
        "EventPattern": EVENT_PATTERN,
        "Targets": [Match.object_like({
            "Arn": {"Ref": Match.string_like_regexp("ContainmentStateMachine")},
            "DeadLetterConfig": {"Arn": {"Fn::GetAtt": [Match.string_like_regexp("DeadLetterQueue"), "Arn"]}},
            "RetryPolicy": {"MaximumRetryAttempts": names.RULE_RETRY_ATTEMPTS,
                            "MaximumEventAgeInSeconds": names.RULE_MAX_EVENT_AGE_SECONDS},
            "RoleArn": {"Fn::GetAtt": [Match.string_like_regexp("TriggerRole"), "Arn"]},
        })],
    })


def test_the_dead_letter_queue_is_encrypted_and_tls_only(template, multi):  # noqa: F811
    from aws_cdk.assertions import Match

    template.has_resource_properties("AWS::SQS::Queue", {"QueueName": names.DLQ_NAME, "SqsManagedSseEnabled": True})
    template.has_resource_properties("AWS::SQS::QueuePolicy", {"PolicyDocument": {"Statement": Match.array_with([
        Match.object_like({"Effect": "Deny", "Action": "sqs:*",
                           "Condition": {"Bool": {"aws:SecureTransport": "false"}}}),
        Match.object_like({"Effect": "Allow", "Action": "sqs:SendMessage",
                           "Principal": {"Service": "events.amazonaws.com"},
                           "Condition": {"ArnEquals": {"aws:SourceArn": Match.any_value()}}}),
    ])}})


def test_the_state_machine_is_the_shipped_asl_file_with_every_function_substituted(multi):  # noqa: F811
    machine = multi.one(STACK, "AWS::StepFunctions::StateMachine", StateMachineName=STATE_MACHINE_NAME)["Properties"]
    assert machine["StateMachineType"] == "STANDARD"
    assert set(machine["DefinitionSubstitutions"]) == {spec.substitution for spec in FUNCTIONS}
    placeholders = {p.split("}")[0] for p in ASL_PATH.read_text().split("${")[1:]}
    assert placeholders == set(machine["DefinitionSubstitutions"])
    # DefinitionBody.from_file: the definition is an asset, byte for byte the file in the repository
    asset = multi.outdir / f"asset.{machine['DefinitionS3Location']['Key']}"
    assert asset.read_bytes() == ASL_PATH.read_bytes()
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    for spec in FUNCTIONS:
        assert flat(machine["DefinitionSubstitutions"][spec.substitution]).startswith(f"<Functions{spec.key}")


def test_every_function_is_built_from_the_catalog_and_the_single_lambdas_asset(multi):  # noqa: F811
    functions = multi.resources(STACK, "AWS::Lambda::Function")
    assert {f["Properties"]["FunctionName"] for f in functions.values()} == {s.function_name for s in FUNCTIONS}
    assets = {json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions.values()}
    assert len(assets) == 1, "one code asset for every function"
    for spec in FUNCTIONS:
        props = multi.one(STACK, "AWS::Lambda::Function", FunctionName=spec.function_name)["Properties"]
        assert (props["Handler"], props["Timeout"], props["MemorySize"], props["Description"]) == (
            spec.handler, spec.timeout_seconds, spec.memory_mb, spec.description)
        assert props["Runtime"] == "python3.13" and props["Architectures"] == ["arm64"]
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        group = multi.template(STACK)["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
        assert group["LogGroupName"] == names.function_log_group(spec) and group["RetentionInDays"] == 365
        assert "TracingConfig" not in props  # no X-Ray SDK in the functions (cold start)
        assert set(props["Environment"]["Variables"]) == set(ENV)
        role = multi.template(STACK)["Resources"][props["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert role["RoleName"] == names.function_role_name(spec) and role["RoleName"].startswith("ir-responder-")


def test_the_asset_leaves_out_bytecode(multi):  # noqa: F811
    props = multi.one(STACK, "AWS::Lambda::Function", FunctionName=FUNCTIONS[0].function_name)["Properties"]
    asset = multi.outdir / f"asset.{props['Code']['S3Key'].removesuffix('.zip')}"
    files = {p.relative_to(asset).as_posix() for p in asset.rglob("*") if p.is_file()}
    assert {"handlers/triage.py", "responder/settings.py"} <= files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def test_powertools_comes_from_the_public_layer_resolved_at_deploy_time(multi):  # noqa: F811
    parameters = multi.template(STACK)["Parameters"]
    layer_parameters = [k for k, v in parameters.items()
                        if v.get("Default") == ResponderFunctions.POWERTOOLS_LAYER_PARAMETER]
    assert len(layer_parameters) == 1
    assert parameters[layer_parameters[0]]["Type"] == "AWS::SSM::Parameter::Value<String>"
    assert ResponderFunctions.POWERTOOLS_LAYER_PARAMETER.endswith("/arm64/python3.13/3.37.0")
    for fn in multi.resources(STACK, "AWS::Lambda::Function").values():
        assert fn["Properties"]["Layers"] == [{"Ref": layer_parameters[0]}]


def test_powertools_layer_version_matches_requirements():
    from stacks.catalog import ROOT

    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert ResponderFunctions.POWERTOOLS_LAYER_PARAMETER.rsplit("/", 1)[1] == pins["aws-lambda-powertools"]


def test_the_functions_environment_points_at_the_configured_accounts(multi):  # noqa: F811
    config = multi.config
    env = multi.one(STACK, "AWS::Lambda::Function", FunctionName="ir-responder-Triage")["Properties"][
        "Environment"]["Variables"]
    assert env["IR_EXTERNAL_ID"] == config.external_id
    assert env["IR_FORENSICS_ACCOUNT"] == config.forensics_account
    assert flat(env["IR_FORENSICS_ROLE_ARN"]) == (
        f"arn:<AWS::Partition>:iam::{config.forensics_account}:role/{names.FORENSICS_ROLE_NAME}")
    assert flat(env["IR_FORENSICS_KEY_ARN"]) == (
        f"arn:<AWS::Partition>:kms:{config.region}:{config.forensics_account}:{names.FORENSICS_KEY_ALIAS}")
    assert env["IR_EVIDENCE_BUCKET"] == f"ir-evidence-{config.forensics_account}-{config.region}"
    assert flat(env["IR_INCIDENT_TABLE"]).startswith("<IncidentsTable")
    assert flat(env["IR_TOPIC_ARN"]).startswith("<NotificationsTopic")
    assert env["IR_OBSERVE_ONLY"] == "false" and env["IR_KEY_SCOPE"] == "all"


def test_the_incident_table(template):
    template.has_resource_properties("AWS::DynamoDB::Table", {
        "TableName": "ir-responder-incidents",
        "KeySchema": [{"AttributeName": "incidentId", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "incidentId", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "DeletionProtectionEnabled": True,
    })
    template.has_resource("AWS::DynamoDB::Table", {"DeletionPolicy": "Retain"})


def test_the_topic_is_encrypted_with_a_rotated_key_alarms_can_use(template, multi):  # noqa: F811
    from aws_cdk.assertions import Match

    template.has_resource_properties("AWS::SNS::Topic", {
        "TopicName": names.TOPIC_NAME,
        "KmsMasterKeyId": {"Fn::GetAtt": [Match.string_like_regexp("NotificationsTopicKey"), "Arn"]},
    })
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True, "KeyPolicy": {
        "Statement": Match.array_with([Match.object_like({"Principal": {"Service": "cloudwatch.amazonaws.com"}})])}})
    template.resource_count_is("AWS::SNS::Subscription", 0)  # no e-mail in the example context


def test_an_email_from_the_context_is_subscribed(single):  # noqa: F811
    subscriptions = single.resources(STACK, "AWS::SNS::Subscription")
    assert [s["Properties"]["Protocol"] for s in subscriptions.values()] == ["email"]
    assert [s["Properties"]["Endpoint"] for s in subscriptions.values()] == [EMAIL]


def test_alarms_on_failed_timed_out_and_aborted_executions_and_on_dead_letters_notify_the_topic(multi):  # noqa: F811
    alarms = {a["Properties"]["AlarmName"]: a["Properties"] for a in multi.resources(STACK, "AWS::CloudWatch::Alarm")
              .values()}
    for metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"):
        alarm = alarms[f"ir-responder-{metric}"]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", metric)
        assert flat(alarm["Dimensions"][0]["Value"]).startswith("<ContainmentStateMachine")
    dead = alarms["ir-responder-FindingsDeadLettered"]
    assert (dead["Namespace"], dead["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    for alarm in alarms.values():
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert [flat(a) for a in alarm["AlarmActions"]] == [flat(_topic_ref(multi))]
    assert len(alarms) == 4


def _topic_ref(assembly) -> dict:
    (logical_id,) = assembly.resources(STACK, "AWS::SNS::Topic")
    return {"Ref": logical_id}


def test_the_state_machine_may_invoke_exactly_the_responder_functions(multi):  # noqa: F811
    role = multi.one(STACK, "AWS::IAM::Role", RoleName=names.STATE_MACHINE_ROLE_NAME)
    (statement,) = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert as_list(statement["Action"]) == ["lambda:InvokeFunction"]
    functions = {logical_id: f["Properties"]["FunctionName"]
                 for logical_id, f in multi.resources(STACK, "AWS::Lambda::Function").items()}
    invoked = [functions[r["Fn::GetAtt"][0]] for r in statement["Resource"] if r["Fn::GetAtt"][1] == "Arn"]
    assert sorted(invoked) == sorted(s.function_name for s in FUNCTIONS)
    assert len(statement["Resource"]) == len(FUNCTIONS)  # unqualified ARNs only: no ":*" versions


def test_the_rule_role_may_only_start_the_containment_state_machine(multi):  # noqa: F811
    role = multi.one(STACK, "AWS::IAM::Role", RoleName=names.RULE_ROLE_NAME)
    statements = [s for p in role["Properties"]["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert [(as_list(s["Action"]), flat(s["Resource"])) for s in statements] == [
        (["states:StartExecution"], flat(_state_machine_ref(multi)))]
    assert not names.RULE_ROLE_NAME.startswith(names.ROLE_PREFIX)  # not trusted by the member / forensics roles


def _state_machine_ref(assembly) -> dict:
    (logical_id,) = assembly.resources(STACK, "AWS::StepFunctions::StateMachine")
    return {"Ref": logical_id}
