"""What the three CDK stacks create, created with boto3 in the in-memory AWS (used by `local.deploy`).

Same names (`stacks.names`), same trust and key policies and the same permission documents (`stacks.policies`,
built from `responder.permissions`), same functions (`stacks.catalog`): tests compare the synthesized templates
with what is made here. Every function is create-or-reuse, so deploying twice in one in-memory AWS works.

Left out on purpose (nothing to run locally): the Powertools layer (the local runtime imports Powertools from the
virtual environment) and the stacks' tags other than the protection tag. The buckets' TLS-only policies are applied;
`gaps_s3` makes moto evaluate their conditions as AWS does.
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
from stacks import names, policies, tasks
from stacks.catalog import ASL_PATH, EVENT_PATTERN, FUNCTIONS, SIGNAL_PATTERNS, STATE_MACHINE_NAME
from stacks.config import DEFAULT_TABLE_NAME

PARTITION = "aws"
TABLE_NAME = DEFAULT_TABLE_NAME
TOPIC_NAME = names.TOPIC_NAME
FORENSICS_KEY_ALIAS = names.FORENSICS_KEY_ALIAS
DENY_ALL_ROLE_NAME = names.DENY_ALL_ROLE_NAME
STATE_MACHINE_ROLE_NAME = names.STATE_MACHINE_ROLE_NAME
RULE_ROLE_NAME = names.RULE_ROLE_NAME
RUNTIME = "python3.13"
ARCHITECTURE = "arm64"
LOG_RETENTION_DAYS = 365
EVIDENCE_RETENTION_DAYS = 365
EVIDENCE_LOCK_MODE = "COMPLIANCE"  # stacks.config's default (Object Lock of the bucket, EBS Snapshot Lock of copies)
PROTECTED = [{"Key": PROTECTED_TAG, "Value": "true"}]


def _exists(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] in (
        "EntityAlreadyExists", "ResourceInUseException", "ResourceConflictException", "BucketAlreadyOwnedByYou",
        "AlreadyExistsException", "StateMachineAlreadyExists", "ResourceAlreadyExistsException",
    )


def _account(sess: Any) -> str:
    return sess.client("sts").get_caller_identity()["Account"]


def _role(iam: Any, name: str, trust: dict, policy: dict | None = None, *, policy_name: str = "permissions",
          tags: list[dict] | None = None) -> str:
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                              Tags=tags or [])["Role"]["Arn"]
    except ClientError as exc:
        if not _exists(exc):
            raise
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    if policy is not None and policy["Statement"]:
        iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
    return arn


def _key(kms: Any, alias: str, policy: dict, description: str) -> str:
    try:
        return kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"]
    except ClientError:
        pass
    key = kms.create_key(Description=description, Policy=json.dumps(policy), KeyUsage="ENCRYPT_DECRYPT")
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyMetadata"]["KeyId"])
    kms.enable_key_rotation(KeyId=key["KeyMetadata"]["KeyId"])
    return key["KeyMetadata"]["Arn"]


def _log_group(logs: Any, name: str, region: str, account: str) -> str:
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as exc:
        if not _exists(exc):
            raise
    logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)
    return f"arn:{PARTITION}:logs:{region}:{account}:log-group:{name}:*"


def responder_trust(security_account: str, external_id: str, specs: tuple = ()) -> dict:
    """Trust of the member and forensics roles: only the exact roles of the functions `specs` (stacks.tasks)."""
    return policies.responder_trust(PARTITION, security_account, external_id,
                                    tasks.role_arns(PARTITION, security_account, specs))


def _custody_key(kms: Any, account: str) -> str:
    """The forensics account's asymmetric custody key (ECC_NIST_P256, SIGN_VERIFY): only the custody signer signs."""
    try:
        return kms.describe_key(KeyId=names.CUSTODY_KEY_ALIAS)["KeyMetadata"]["Arn"]
    except ClientError:
        pass
    policy = policies.custody_key_policy(partition=PARTITION, account=account,
                                         signer_arn=names.role_arn(PARTITION, account, names.SIGNER_ROLE_NAME))
    key = kms.create_key(Description="Chain of custody: signs every evidence manifest", Policy=json.dumps(policy),
                         KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")
    kms.create_alias(AliasName=names.CUSTODY_KEY_ALIAS, TargetKeyId=key["KeyMetadata"]["KeyId"])
    return key["KeyMetadata"]["Arn"]


def member_watch(sess: Any, *, account: str) -> list[str]:
    """The member account's IAM watch (stacks.member_watch_stack): the rules on the member role's IAM calls, in
    us-east-1, publishing to their own topic. Returns the rules' ARNs."""
    region = policies.IAM_EVENTS_REGION
    events, sns = sess.client("events", region_name=region), sess.client("sns", region_name=region)
    topic_arn = sns.create_topic(Name=names.IAM_WATCH_TOPIC)["TopicArn"]
    arns = []
    for suffix, pattern in policies.watch_patterns(PARTITION, account).items():
        name = names.IAM_WATCH_RULE_PREFIX + suffix
        arns.append(events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED",
                                    Description="IAM write by the responder's member role that the responder never "
                                                "makes")["RuleArn"])
        events.put_targets(Rule=name, Targets=[{"Id": "Target0", "Arn": topic_arn}])
    sns.set_topic_attributes(TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(
        policies.watch_topic_policy(topic_arn=topic_arn, rule_arns=arns, partition=PARTITION)))
    return arns


# ---------------------------------------------------------------------------------------------------------------
# Member stack
# ---------------------------------------------------------------------------------------------------------------
def member_region_stack(sess: Any, *, region: str, forensics_account: str, forensics_region: str) -> str:
    """stacks.member_region_stack: the sharing key of one more region. Returns its ARN."""
    account = _account(sess)
    return _key(sess.client("kms", region_name=region), SHARING_KEY_ALIAS,
                policies.sharing_key_policy(partition=PARTITION, account=account, forensics_account=forensics_account,
                                            region=region, forensics_region=forensics_region),
                "Evidence sharing: the forensics account may use it only through EC2")


def member_stack(sess: Any, *, region: str, security_account: str, forensics_account: str, external_id: str,
                 quarantine_policy_arn: str = DEFAULT_QUARANTINE_POLICY,
                 forensics_region: str | None = None) -> dict[str, Any]:
    iam, kms = sess.client("iam"), sess.client("kms", region_name=region)
    account = _account(sess)
    deny_all_role = _role(iam, DENY_ALL_ROLE_NAME, policies.service_trust("ec2.amazonaws.com"),
                          policies.DENY_ALL_POLICY, policy_name="deny-all")
    try:
        iam.create_instance_profile(InstanceProfileName=DENY_ALL_PROFILE)
        iam.add_role_to_instance_profile(InstanceProfileName=DENY_ALL_PROFILE, RoleName=DENY_ALL_ROLE_NAME)
    except ClientError as exc:
        if not _exists(exc):
            raise
    sharing_key = _key(
        kms, SHARING_KEY_ALIAS,
        policies.sharing_key_policy(partition=PARTITION, account=account, forensics_account=forensics_account,
                                    region=region, forensics_region=forensics_region),
        "Evidence sharing: the forensics account may use it only through EC2")
    policy = policies.member_policy(partition=PARTITION, account=account, security_account=security_account,
                                    actions=permissions.member_actions(),
                                    deny_all_role_arn=deny_all_role, quarantine_policy_arn=quarantine_policy_arn,
                                    forensics_account=forensics_account, protected_tag=PROTECTED_TAG)
    role_arn = _role(iam, MEMBER_ROLE_NAME, responder_trust(security_account, external_id, tasks.member_tasks()),
                     policy, tags=PROTECTED)
    readers = tasks.member_read_tasks()
    if readers:  # stacks.member_stack: the read-only twin, trusted by Triage alone
        _role(iam, names.MEMBER_READ_ROLE_NAME, responder_trust(security_account, external_id, readers),
              policies.member_read_policy(permissions.member_read_actions()), tags=PROTECTED)
    releasers = tasks.member_release_tasks()
    if releasers:  # stacks.member_stack: the release twin (undo actions only), trusted by the release function alone
        _role(iam, names.MEMBER_RELEASE_ROLE_NAME, responder_trust(security_account, external_id, releasers),
              policies.member_release_policy(partition=PARTITION, account=account,
                                             actions=permissions.member_release_actions(),
                                             quarantine_policy_arn=quarantine_policy_arn, protected_tag=PROTECTED_TAG),
              tags=PROTECTED)
    watch = member_watch(sess, account=account)
    return {"role_arn": role_arn, "sharing_key_arn": sharing_key, "deny_all_role_arn": deny_all_role,
            "iam_watch_rule_arns": watch}


# ---------------------------------------------------------------------------------------------------------------
# Forensics stack
# ---------------------------------------------------------------------------------------------------------------
def _tls_only(bucket: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
        "Resource": [f"arn:{PARTITION}:s3:::{bucket}", f"arn:{PARTITION}:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}


def _bucket(s3: Any, name: str, region: str, *, object_lock: bool = False) -> bool:
    """Create the bucket; False if it already existed."""
    params: dict[str, Any] = {"Bucket": name}
    if object_lock:
        params["ObjectLockEnabledForBucket"] = True
    if region != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**params)
    except ClientError as exc:
        if not _exists(exc):
            raise
        return False
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return True


def forensics_stack(sess: Any, *, region: str, security_account: str, member_accounts: tuple[str, ...],
                    external_id: str = "ir-responder", lock_mode: str = EVIDENCE_LOCK_MODE,
                    custodian_role: str = names.DEFAULT_CUSTODIAN_ROLE_NAME,
                    key_regions: tuple[str, ...] | None = None) -> dict[str, str]:
    iam, kms, s3 = sess.client("iam"), sess.client("kms", region_name=region), sess.client("s3", region_name=region)
    account = _account(sess)
    key_arn = _key(kms, FORENSICS_KEY_ALIAS, policies.forensics_key_policy(partition=PARTITION, account=account),
                   "Forensics evidence: only the forensics account can use it")
    custody_key_arn = _custody_key(kms, account)
    role_name_arn = names.role_arn(PARTITION, account, FORENSICS_ROLE_NAME)
    bucket = names.evidence_bucket(account, region)
    logs_bucket = names.access_log_bucket(account, region)
    if _bucket(s3, logs_bucket, region):
        s3.put_bucket_encryption(Bucket=logs_bucket, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        logs_policy = _tls_only(logs_bucket)
        logs_policy["Statement"].append({  # S3 server access log delivery, for the evidence bucket only
            "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
            "Resource": f"arn:{PARTITION}:s3:::{logs_bucket}/evidence/*",
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:{PARTITION}:s3:::{bucket}"},
                          "StringEquals": {"aws:SourceAccount": account}}})
        s3.put_bucket_policy(Bucket=logs_bucket, Policy=json.dumps(logs_policy))
    if _bucket(s3, bucket, region, object_lock=True):
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn},
            "BucketKeyEnabled": True}]})
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": lock_mode, "Days": EVIDENCE_RETENTION_DAYS}}})
        bucket_policy = _tls_only(bucket)
        bucket_policy["Statement"] += policies.evidence_bucket_policy(
            partition=PARTITION, bucket=bucket, key_arn=key_arn, writer_arn=role_name_arn,
            custodian_arn=names.role_arn(PARTITION, account, custodian_role))
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy))  # see gaps_s3
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": {
            "TargetBucket": logs_bucket, "TargetPrefix": "evidence/"}})
    policy = policies.forensics_policy(partition=PARTITION, account=account, region=region,
                                       security_account=security_account,
                                       actions=permissions.forensics_actions(), key_arn=key_arn, bucket=bucket,
                                       member_accounts=member_accounts, protected_tag=PROTECTED_TAG,
                                       key_regions=key_regions)
    role_arn = _role(iam, FORENSICS_ROLE_NAME,
                     responder_trust(security_account, external_id, tasks.forensics_tasks()), policy, tags=PROTECTED)
    signer_arn = _role(iam, names.SIGNER_ROLE_NAME,
                       responder_trust(security_account, external_id, tasks.signer_tasks()),
                       policies.signer_policy(partition=PARTITION, account=account,
                                              actions=permissions.signer_actions(), signing_key_arn=custody_key_arn,
                                              protected_tag=PROTECTED_TAG), tags=PROTECTED)
    return {"role_arn": role_arn, "key_arn": key_arn, "bucket": bucket, "custody_key_arn": custody_key_arn,
            "signer_role_arn": signer_arn}


# ---------------------------------------------------------------------------------------------------------------
# Responder stack
# ---------------------------------------------------------------------------------------------------------------
def trail_stack(sess: Any, *, region: str, database: str, table: str, workgroup: str,
                date_partition: str = "") -> policies.TrailTable:
    """What a deployment with a trail table has before the responder stack (it names them; the stacks do not create
    them): the organization trail's bucket, the table over it (CloudTrail's schema), the Athena workgroup with its
    output location. Then the responder stack's part: the runbook's named queries
    (stacks/constructs/trail_queries.py)."""
    from responder.trail_query import named_queries

    account = _account(sess)
    s3 = sess.client("s3", region_name=region)
    athena = sess.client("athena", region_name=region)
    trail_bucket, results = f"ir-org-trail-{account}-{region}", f"ir-athena-results-{account}-{region}"
    for bucket in (trail_bucket, results):
        _bucket(s3, bucket, region)
    # The Glue table over the trail (moto's Glue needs pyparsing, which the runtime does not install): the
    # in-memory engine keeps the catalog of trail tables itself.
    from state_machines import gaps_athena

    gaps_athena.register_table(account, region, database, table)
    output = f"s3://{results}/scope/"
    try:
        athena.create_work_group(Name=workgroup, Configuration={
            "ResultConfiguration": {"OutputLocation": output}, "EnforceWorkGroupConfiguration": True})
    except ClientError as exc:
        if "already" not in str(exc).lower() and not _exists(exc):
            raise
    saved = {athena.get_named_query(NamedQueryId=i)["NamedQuery"]["Name"]
             for i in athena.list_named_queries(WorkGroup=workgroup).get("NamedQueryIds", [])}
    for query in named_queries(database=database, table=table, date_partition=date_partition):
        if query["name"] not in saved:
            athena.create_named_query(Name=query["name"], Description=query["description"], Database=database,
                                      QueryString=query["query"], WorkGroup=workgroup)
    return policies.TrailTable(account=account, region=region, database=database, table=table, workgroup=workgroup,
                               trail_bucket=f"{trail_bucket}/AWSLogs/", output_location=output, partition=PARTITION)


def responder_stack(sess: Any, *, region: str, member_accounts: tuple[str, ...] | None = None,
                    forensics_account: str | None = None, trail: policies.TrailTable | None = None) -> dict[str, Any]:
    """The table, the topic (and its key), the functions' roles and log groups, the state machine's role and log
    group. The functions, the state machine, the rule and the alarms follow in `functions_and_state_machine`."""
    iam, ddb = sess.client("iam"), sess.client("dynamodb", region_name=region)
    sns, kms = sess.client("sns", region_name=region), sess.client("kms", region_name=region)
    logs = sess.client("logs", region_name=region)
    account = _account(sess)
    members = tuple(member_accounts or (account,))
    forensics = forensics_account or account

    topic_key = _key(kms, names.TOPIC_KEY_ALIAS, policies.topic_key_policy(partition=PARTITION, account=account),
                     "Encrypts the GuardDuty auto-responder's notifications topic")
    topic_arn = sns.create_topic(Name=TOPIC_NAME, Attributes={"KmsMasterKeyId": topic_key})["TopicArn"]
    try:
        ddb.create_table(TableName=TABLE_NAME, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "incidentId", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "incidentId", "KeyType": "HASH"}],
                         SSESpecification={"Enabled": True, "SSEType": "KMS"})
        ddb.update_continuous_backups(TableName=TABLE_NAME, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
    except ClientError as exc:
        if not _exists(exc):
            raise
    table_arn = ddb.describe_table(TableName=TABLE_NAME)["Table"]["TableArn"]

    executions = policies.executions_arn(PARTITION, region, account, STATE_MACHINE_NAME)
    role_arns: dict[str, str] = {}
    for spec in FUNCTIONS:
        log_group_arn = _log_group(logs, names.function_log_group(spec), region, account)
        policy = policies.function_policy(
            actions=tasks.task_access(spec).responder_actions,
            assume_role_arns=tasks.assume_role_arns(spec, partition=PARTITION, member_accounts=members,
                                                    forensics_account=forensics),
            table_arn=table_arn, topic_arn=topic_arn, topic_key_arn=topic_key, log_group_arn=log_group_arn,
            executions_arn=executions, trail_actions=tasks.task_access(spec).trail_actions, trail=trail,
            secrets_arn=policies.release_secrets_arn(PARTITION, region, account))
        role_arns[spec.key] = _role(iam, names.function_role_name(spec),
                                    policies.service_trust("lambda.amazonaws.com", source_account=account),
                                    policy, tags=PROTECTED)

    _log_group(logs, names.STATE_MACHINE_LOG_GROUP, region, account)
    function_arns = [f"arn:{PARTITION}:lambda:{region}:{account}:function:{spec.function_name}" for spec in FUNCTIONS]
    sm_role = _role(iam, STATE_MACHINE_ROLE_NAME,
                    policies.service_trust("states.amazonaws.com", source_account=account,
                                           source_arn=policies.state_machine_arn(PARTITION, region, account)),
                    policies.state_machine_policy(function_arns), policy_name="invoke-functions", tags=PROTECTED)
    return {"table_name": TABLE_NAME, "topic_arn": topic_arn, "topic_key_arn": topic_key,
            "function_role_arns": role_arns, "function_role_arn": role_arns[FUNCTIONS[0].key],
            "state_machine_role_arn": sm_role}


def _code_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README.txt", "The local runtime runs the handlers from the lambdas/ folder in-process.")
    return buf.getvalue()


def function_configuration(spec: Any, *, role_arn: str, environment: dict[str, str]) -> dict[str, Any]:
    """The settings `lambda.create_function` gets for `spec` (the same as the template's)."""
    return dict(FunctionName=spec.function_name, Runtime=RUNTIME, Role=role_arn, Handler=spec.handler,
                Timeout=spec.timeout_seconds, MemorySize=spec.memory_mb, Description=spec.description,
                Environment={"Variables": dict(environment)},
                LoggingConfig={"LogFormat": "JSON", "LogGroup": names.function_log_group(spec)})


def functions_and_state_machine(sess: Any, *, region: str, environment: dict[str, str],
                                role_arn: str | None = None,  # noqa: ARG001 - unused: one role per function
                                state_machine_role_arn: str) -> tuple[dict[str, str], str]:
    lam, sfn = sess.client("lambda", region_name=region), sess.client("stepfunctions", region_name=region)
    iam = sess.client("iam")
    account = _account(sess)
    arns: dict[str, str] = {}
    for spec in FUNCTIONS:
        role = iam.get_role(RoleName=names.function_role_name(spec))["Role"]["Arn"]
        config = function_configuration(spec, role_arn=role, environment=environment)
        try:
            arns[spec.key] = lam.create_function(Code={"ZipFile": _code_zip()}, Architectures=[ARCHITECTURE],
                                                 **config)["FunctionArn"]
        except ClientError as exc:
            if not _exists(exc):
                raise
            arns[spec.key] = lam.update_function_configuration(**config)["FunctionArn"]
    definition = ASL_PATH.read_text()
    for spec in FUNCTIONS:
        definition = definition.replace("${%s}" % spec.substitution, arns[spec.key])
    log_group_arn = f"arn:{PARTITION}:logs:{region}:{account}:log-group:{names.STATE_MACHINE_LOG_GROUP}:*"
    settings = dict(
        definition=definition, roleArn=state_machine_role_arn,
        loggingConfiguration={"level": "ALL", "includeExecutionData": True,
                              "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": log_group_arn}}]},
        tracingConfiguration={"enabled": True},
    )
    existing = [m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
                if m["name"] == STATE_MACHINE_NAME]
    if existing:
        sfn.update_state_machine(stateMachineArn=existing[0], **settings)
        sm_arn = existing[0]
    else:
        sm_arn = sfn.create_state_machine(name=STATE_MACHINE_NAME, type="STANDARD", **settings)["stateMachineArn"]
    _trigger_and_alarms(sess, region=region, state_machine_arn=sm_arn)
    return arns, sm_arn


def _trigger_and_alarms(sess: Any, *, region: str, state_machine_arn: str) -> None:
    """The rule (same pattern), its dead-letter queue, retry policy and role; the alarms on the topic."""
    iam, sqs = sess.client("iam"), sess.client("sqs", region_name=region)
    events, cloudwatch = sess.client("events", region_name=region), sess.client("cloudwatch", region_name=region)
    sns = sess.client("sns", region_name=region)
    account = _account(sess)
    queue_url = sqs.create_queue(QueueName=names.DLQ_NAME, Attributes={
        "SqsManagedSseEnabled": "true", "MessageRetentionPeriod": str(14 * 86400)})["QueueUrl"]
    queue_arn = f"arn:{PARTITION}:sqs:{region}:{account}:{names.DLQ_NAME}"
    rules = {names.RULE_NAME: (EVENT_PATTERN, "GuardDuty findings of severity 4 and above start the containment "
                                              "state machine")}
    rules.update({names.signal_rule(suffix): (pattern, "Exposed-key events (Trusted Advisor, AWS Health) start the "
                                                       "containment state machine")
                  for suffix, pattern in SIGNAL_PATTERNS.items()})
    rule_arns = [events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED",
                                 Description=description)["RuleArn"] for name, (pattern, description) in rules.items()]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(
        policies.dead_letter_queue_policy(queue_arn=queue_arn, rule_arn=rule_arns, partition=PARTITION))})
    rule_role = _role(iam, RULE_ROLE_NAME,
                      policies.service_trust("events.amazonaws.com", source_account=account, source_arn=[
                          policies.rule_arn(PARTITION, region, account, name) for name in rules]),
                      policies.rule_target_policy(state_machine_arn), tags=PROTECTED)
    for name in rules:
        events.put_targets(Rule=name, Targets=[{
            "Id": "Target0", "Arn": state_machine_arn, "RoleArn": rule_role,
            "DeadLetterConfig": {"Arn": queue_arn},
            "RetryPolicy": {"MaximumRetryAttempts": names.RULE_RETRY_ATTEMPTS,
                            "MaximumEventAgeInSeconds": names.RULE_MAX_EVENT_AGE_SECONDS}}])
    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    sm_metrics = {"ExecutionsFailed": "ExecutionsFailed", "ExecutionsTimedOut": "ExecutionsTimedOut",
                  "ExecutionsAborted": "ExecutionsAborted"}
    for name, metric in sm_metrics.items():
        cloudwatch.put_metric_alarm(
            AlarmName=f"ir-responder-{name}", Namespace="AWS/States", MetricName=metric, Statistic="Sum",
            Dimensions=[{"Name": "StateMachineArn", "Value": state_machine_arn}], Period=300, EvaluationPeriods=1,
            Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
            AlarmActions=[topic_arn])
    cloudwatch.put_metric_alarm(
        AlarmName="ir-responder-FindingsDeadLettered", Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible", Statistic="Maximum",
        Dimensions=[{"Name": "QueueName", "Value": names.DLQ_NAME}], Period=300, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching", AlarmActions=[topic_arn])
