"""A deployment that names the organization trail's Athena table (context keys athena*): the runbook's queries are
saved as named queries in its workgroup, the functions get its names, and only the identity task may query it -
on that workgroup, that database and table, reading the trail's objects and writing the workgroup's results, and
nothing else. Synthesized in-process (cdk-nag applied: an unacknowledged finding fails the synth)."""
from __future__ import annotations

import pytest

from responder import permissions
from responder.trail_query import named_queries
from stacks import names, tasks
from stacks.catalog import FUNCTIONS
from stacks.config import Config, ConfigError, load_context
from tests.worlds.infra import EXTERNAL_ID, allowed_actions, as_list, flat, multi, role_statements  # noqa: F401

P = "<AWS::Partition>"
TRAIL = {"athenaDatabase": "org_trail", "athenaTable": "cloudtrail_logs", "athenaWorkgroup": "ir-scope",
         "athenaOutputLocation": "s3://ir-athena-results-111111111111/scope/",
         "athenaTrailBucket": "org-trail-logs/AWSLogs/o-abc123/", "athenaDatePartition": "timestamp"}


LAKE = "arn:aws:cloudtrail:eu-west-1:111111111111:eventdatastore/EXAMPLE-f852-4e8f-8bd1"


def _synth(tmp_path_factory, context):
    from aws_cdk.assertions import Template

    from stacks.app import build_app

    app, stacks = build_app({**load_context(), "externalId": EXTERNAL_ID, **context},
                            outdir=str(tmp_path_factory.mktemp("trail-cdk-out")))
    app.synth()  # cdk-nag: fails on any unacknowledged finding
    return Template.from_stack(stacks[names.RESPONDER_STACK]).to_json()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return _synth(tmp_path_factory, TRAIL)


@pytest.fixture(scope="module")
def lake_template(tmp_path_factory):
    return _synth(tmp_path_factory, {"cloudTrailLakeEventDataStore": LAKE})


def _roles(template):
    return {r["Properties"]["RoleName"]: r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"
            and "RoleName" in r["Properties"]}


def test_the_runbooks_queries_are_saved_in_the_workgroup_as_the_responder_runs_them(template):
    saved = {r["Properties"]["Name"]: r["Properties"] for r in template["Resources"].values()
             if r["Type"] == "AWS::Athena::NamedQuery"}
    expected = named_queries(database="org_trail", table="cloudtrail_logs", date_partition="timestamp")
    assert set(saved) == {q["name"] for q in expected} and len(saved) == 8
    for query in expected:
        assert saved[query["name"]]["QueryString"] == query["query"]
        assert saved[query["name"]]["WorkGroup"] == "ir-scope" and saved[query["name"]]["Database"] == "org_trail"


def test_the_functions_get_the_trail_tables_names(template):
    for fn in (r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
               and "Environment" in r["Properties"]):
        env = fn["Properties"]["Environment"]["Variables"]
        assert {k: env[k] for k in ("IR_TRAIL_DATABASE", "IR_TRAIL_TABLE", "IR_TRAIL_WORKGROUP",
                                    "IR_TRAIL_DATE_PARTITION")} == {
            "IR_TRAIL_DATABASE": "org_trail", "IR_TRAIL_TABLE": "cloudtrail_logs", "IR_TRAIL_WORKGROUP": "ir-scope",
            "IR_TRAIL_DATE_PARTITION": "timestamp"}


def test_only_the_identity_task_may_query_the_trail_and_only_there(template):
    roles = _roles(template)
    for spec in FUNCTIONS:
        statements = role_statements(roles[names.function_role_name(spec)])
        access = tasks.task_access(spec)
        declared = set(access.responder_actions)
        assume = {"sts:AssumeRole"} if access.member or access.member_read or access.member_release or access.forensics or access.signer else set()
        from stacks import policies

        athena = {a for a in access.trail_actions if not a.startswith("cloudtrail:")}
        assert allowed_actions(statements) == (assume | declared | policies.function_extra_actions(declared)
                                               | athena), spec.key
        if spec.key != "ContainIdentities":
            assert not access.trail_actions
            assert not [a for a in allowed_actions(statements) if a.startswith(("athena:", "glue:", "s3:"))]
    statements = {s["Sid"]: s for s in role_statements(roles[names.function_role_name(
        next(s for s in FUNCTIONS if s.key == "ContainIdentities"))])}
    region, account = "eu-west-1", "111111111111"
    expected = {
        "TrailQueriesWorkgroup": ({"athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                                   "athena:StopQueryExecution"},
                                  {f"arn:{P}:athena:{region}:{account}:workgroup/ir-scope"}),
        "TrailTableDefinition": ({"glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"},
                                 {f"arn:{P}:glue:{region}:{account}:catalog",
                                  f"arn:{P}:glue:{region}:{account}:database/org_trail",
                                  f"arn:{P}:glue:{region}:{account}:table/org_trail/cloudtrail_logs"}),
        "TrailLogsReadBucket": ({"s3:GetBucketLocation", "s3:ListBucket"}, {f"arn:{P}:s3:::org-trail-logs"}),
        "TrailLogsReadObjects": ({"s3:GetObject"}, {f"arn:{P}:s3:::org-trail-logs/AWSLogs/o-abc123/*"}),
        "TrailQueryResultsBucket": ({"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"},
                                    {f"arn:{P}:s3:::ir-athena-results-111111111111"}),
        "TrailQueryResultsObjects": ({"s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts",
                                      "s3:PutObject"}, {f"arn:{P}:s3:::ir-athena-results-111111111111/scope/*"}),
    }
    for sid, (actions, resources) in expected.items():
        statement = statements[sid]
        assert statement["Effect"] == "Allow" and "Condition" not in statement
        assert set(as_list(statement["Action"])) == actions, sid
        assert {flat(r) for r in as_list(statement["Resource"])} == resources, sid
    # the trail itself is never written: no write action names the trail bucket
    for statement in statements.values():
        if any(flat(r).startswith(f"arn:{P}:s3:::org-trail-logs") for r in as_list(statement["Resource"])):
            assert set(as_list(statement["Action"])) <= {"s3:GetObject", "s3:GetBucketLocation", "s3:ListBucket"}
    lake = {"cloudtrail:StartQuery", "cloudtrail:DescribeQuery", "cloudtrail:GetQueryResults", "cloudtrail:CancelQuery"}
    assert set(permissions.trail_actions()) == {a for s in expected.values() for a in s[0]} | lake
    assert not [a for s in statements.values() for a in as_list(s["Action"]) if a in lake]


def test_with_a_lake_event_data_store_the_identity_task_may_query_that_store_only(lake_template):
    from stacks import policies

    roles = _roles(lake_template)
    assert not [r for r in lake_template["Resources"].values() if r["Type"] == "AWS::Athena::NamedQuery"]
    for spec in FUNCTIONS:
        statements = role_statements(roles[names.function_role_name(spec)])
        access = tasks.task_access(spec)
        declared = set(access.responder_actions)
        assume = {"sts:AssumeRole"} if access.member or access.member_read or access.member_release or access.forensics or access.signer else set()
        lake = {a for a in access.trail_actions if a.startswith("cloudtrail:")}
        assert allowed_actions(statements) == assume | declared | policies.function_extra_actions(declared) | lake
    [identity] = [s for s in FUNCTIONS if s.key == "ContainIdentities"]
    [store] = [s for s in role_statements(roles[names.function_role_name(identity)])
               if s["Sid"] == "TrailEventDataStore"]
    assert set(as_list(store["Action"])) == {"cloudtrail:StartQuery", "cloudtrail:DescribeQuery",
                                             "cloudtrail:GetQueryResults", "cloudtrail:CancelQuery"}
    assert as_list(store["Resource"]) == [LAKE]
    env = next(r for r in lake_template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
               and "Environment" in r["Properties"])["Properties"]["Environment"]["Variables"]
    assert env["IR_TRAIL_EVENT_DATA_STORE"] == LAKE and env["IR_TRAIL_DATABASE"] == ""


def test_without_a_trail_table_nothing_of_it_is_deployed(multi):  # noqa: F811
    assert not multi.resources(names.RESPONDER_STACK, "AWS::Athena::NamedQuery")
    for spec in FUNCTIONS:
        role = multi.one(names.RESPONDER_STACK, "AWS::IAM::Role", RoleName=names.function_role_name(spec))
        assert not [a for a in allowed_actions(role_statements(role)) if a.startswith(("athena:", "glue:", "s3:"))]


@pytest.mark.parametrize("context,key", [
    ({"athenaDatabase": "org_trail"}, "athenaTable"),
    ({**TRAIL, "athenaWorkgroup": ""}, "athenaWorkgroup"),
    ({**TRAIL, "athenaDatabase": 'org"; DROP'}, "athenaDatabase"),
    ({**TRAIL, "athenaTable": "CloudTrail-Logs"}, "athenaTable"),
    ({**TRAIL, "athenaWorkgroup": "has space"}, "athenaWorkgroup"),
    ({**TRAIL, "athenaOutputLocation": "s3://bucket/no-slash"}, "athenaOutputLocation"),
    ({**TRAIL, "athenaOutputLocation": "https://bucket/x/"}, "athenaOutputLocation"),
    ({**TRAIL, "athenaTrailBucket": "Bad_Bucket"}, "athenaTrailBucket"),
    ({**TRAIL, "athenaDatePartition": "date-of"}, "athenaDatePartition"),
    ({"athenaDatePartition": "timestamp"}, "athenaDatePartition"),
    ({"cloudTrailLakeEventDataStore": "arn:aws:s3:::bucket"}, "cloudTrailLakeEventDataStore"),
    ({**TRAIL, "cloudTrailLakeEventDataStore": LAKE}, "cloudTrailLakeEventDataStore"),
])
def test_the_trail_keys_are_validated_at_synth_with_errors_naming_the_key(context, key):
    with pytest.raises(ConfigError, match=f"context '{key}'"):
        Config.from_context({**load_context(), "externalId": EXTERNAL_ID, **context})
