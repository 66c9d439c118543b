"""`python -m cli`: start, follow and list incident responses - against the deployed responder, or `--local`.

    python -m cli start --user ci-deployer --account 444455556666 --region eu-west-1 --reason "key leaked"
    python -m cli start --finding finding.json
    python -m cli status gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41
    python -m cli list --status failed
    python -m cli verify gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41 --profile forensics-auditor
    python -m cli approve gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41 --reason "confirmed with the key's owner"
    python -m cli deny gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41 --reason "pen test, ticket SEC-1234"
    python -m cli analyze gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41 --instance i-0123456789abcdef0 --reason "open the disks"
    python -m cli release gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41 --reason "false positive" --user ci-deployer --dry-run
    python -m cli release gd-a2c6e5f0b8d94f6c9e1b7a3d5f2c8e41 --reason "false positive" --instance i-0abc... --autoscaling

Against AWS it uses your credentials (environment, `--profile`, SSO) in the security account: `start` starts the
deployed state machine `ir-responder-containment` (Step Functions `StartExecution`, then `DescribeExecution` until it
ends), `status` and `list` read the incident table (`GetItem`, `Scan`). With `--local` everything runs in an
in-memory AWS (state_machines.local): no account, no network.

`approve` and `deny` answer a pending approval (containment level ``approval``): they read the task token from the
incident record (`GetItem`), refuse an answered or expired request, send the decision with your identity
(`sts:GetCallerIdentity`, `states:SendTaskSuccess`) and mark the record (`UpdateItem`, the token is then gone).

`analyze` starts the state machine with an ``{"analyze": ...}`` request (responder.workstation): the incident's
verified forensics copies become volumes attached to a forensic workstation in the forensics account (`--instance`,
or `--image` with `--instance-type` and `--subnet` to start one), live response only with `--live-response-port`.

`verify` checks the chain of custody of one incident (responder.custody) with your credentials in the forensics
account: every attempt's manifest (s3:ListBucketVersions) written once and signed (kms:Verify with the custody key),
and every snapshot the latest manifest names against AWS (ec2:DescribeSnapshots, ec2:DescribeLockedSnapshots):
present, its `ir:hash` and `ir:incident` tags as recorded, still locked at least as long as recorded. It says
plainly what does not match.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent
for _p in (ROOT, ROOT / "lambdas"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from stacks.catalog import STATE_MACHINE_NAME  # noqa: E402

OK, FAILED, USAGE, NOT_FOUND, AWS_ERROR, RUNNING = 0, 1, 2, 3, 4, 5
POLL_SECONDS = 2.0
DEFAULT_TABLE = "ir-responder-incidents"
DEFAULT_STATE = Path(".ir-local") / "incidents.json"
LOCAL_MEMBER, LOCAL_FORENSICS = "444455556666", "999988887777"
FAILING_OUTCOMES = ("failed", "partially_contained", "protection_unverified")

EPILOG = """\
exit codes:
  0  done: the execution succeeded (read the outcome: contained, protected, dry_run_plan, duplicate...)
  1  the execution failed: something was not contained (failed, partially_contained, protection_unverified,
     or the record/notification could not be written). Nothing was undone; the output says what to finish by hand
  2  usage or input error (nothing was started)
  3  no such incident
  4  AWS error: no credentials, access denied, state machine or table not found
  5  still running when --timeout passed (follow it with: status INCIDENT)
verify: 0 every manifest is signed and written once, every checked snapshot matches; 1 something does not match (each
  mismatch is printed); 3 no manifest for the incident; 4 AWS error

examples:
  contain an IAM user and a role now:
    python -m cli start --user svc-build --role app-role --account 111122223333 --region us-east-1 \\
        --reason "svc-build key found in a public repository"
  see what would change, changing nothing:
    python -m cli start --role app-role --account 111122223333 --region us-east-1 --reason drill --dry-run
  re-run a GuardDuty finding (aws guardduty get-findings output, a bare finding or the EventBridge event):
    python -m cli start --finding finding.json
  follow up:
    python -m cli status IR-2024-0602
    python -m cli list --status partially_contained
  try it without an AWS account (in-memory AWS; the targets are created there first):
    python -m cli --local start --user ci-deployer --account 444455556666 --region eu-west-1 --reason test
    python -m cli --local status IR-...
"""


class CliError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


# -- the request -----------------------------------------------------------------------------------------------
def _now() -> datetime:
    return datetime.now(timezone.utc)


def build_input(args: argparse.Namespace) -> dict[str, Any]:
    """The execution input: the finding file as is, or a manual request from the options. Validated with the
    state machine's own triage, so a bad request fails here, before anything starts."""
    from responder.errors import InvalidInput
    from responder.triage import normalize

    targets = args.user or args.role or args.instance
    if args.finding and targets:
        raise CliError("give either --finding or --user/--role/--instance, not both", USAGE)
    if args.finding:
        if args.dry_run or args.incident_id:
            raise CliError("--dry-run and --incident-id apply to a manual request (--user/--role/--instance): a "
                           "finding's incident id is gd-<finding id>", USAGE)
        try:
            text = sys.stdin.read() if args.finding == "-" else Path(args.finding).read_text()
            request = json.loads(text)
        except OSError as exc:
            raise CliError(f"cannot read {args.finding}: {exc.strerror}", USAGE) from None
        except ValueError as exc:
            raise CliError(f"{args.finding} is not JSON: {exc}", USAGE) from None
    elif targets:
        missing = [f"--{k}" for k in ("account", "region", "reason") if not getattr(args, k)]
        if missing:
            raise CliError(f"a manual request needs {', '.join(missing)}", USAGE)
        manual: dict[str, Any] = {"accountId": args.account, "region": args.region, "reason": args.reason,
                                  "incidentId": args.incident_id or f"IR-{_now():%Y%m%d-%H%M%S}"}
        for key, values in (("iamUsers", args.user), ("roles", args.role), ("instances", args.instance)):
            if values:
                manual[key] = values
        if args.dry_run:
            manual["dryRun"] = True
        if args.level:
            manual["level"] = args.level
        request = {"manual": manual}
    else:
        raise CliError("name what to contain: --finding FILE, or --user/--role/--instance with --account, "
                       "--region and --reason", USAGE)
    try:
        incident = normalize(request, execution_name="cli")
    except InvalidInput as exc:
        raise CliError(f"invalid request: {exc}", USAGE) from None
    return {"input": request, "incident": incident}


def execution_name(incident_id: str) -> str:
    """Unique, readable, within Step Functions' 80 characters of [A-Za-z0-9-_]."""
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", incident_id)[:50]
    return f"cli-{stem}-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"


# -- backends: AWS, or the in-memory AWS ---------------------------------------------------------------------
class Aws:
    """The deployed responder, through the caller's credentials."""

    def __init__(self, args: argparse.Namespace):
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors = (BotoCoreError, ClientError)
        try:
            self.session = boto3.session.Session(profile_name=args.profile, region_name=args.responder_region)
        except BotoCoreError as exc:
            raise CliError(f"AWS configuration: {exc}", AWS_ERROR) from None
        if not self.session.region_name:
            raise CliError("no AWS region: pass --responder-region (where the responder is deployed) or set "
                           "AWS_DEFAULT_REGION", AWS_ERROR)
        self.table_name = args.table
        self.state_machine_arn = getattr(args, "state_machine_arn", None)

    def call(self, what: str, fn: Callable[[], Any], *, missing: dict[str, str] | None = None) -> Any:
        """Run one AWS call; errors become a CliError that says what to do. `missing`: error code -> message."""
        from botocore.exceptions import ClientError, NoCredentialsError

        try:
            return fn()
        except NoCredentialsError:
            raise CliError("no AWS credentials: log in (aws sso login, a profile with --profile, or environment "
                           "variables) to the security account", AWS_ERROR) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if missing and code in missing:
                raise CliError(missing[code], AWS_ERROR) from None
            raise CliError(f"{what}: {exc}", AWS_ERROR) from None
        except self._errors as exc:
            raise CliError(f"{what}: {exc}", AWS_ERROR) from None

    def _machine(self) -> str:
        if self.state_machine_arn:
            return self.state_machine_arn
        sts = self.session.client("sts")
        arn = self.call("who am I (sts:GetCallerIdentity)", lambda: sts.get_caller_identity()["Arn"])
        partition, account = arn.split(":")[1], arn.split(":")[4]
        return (f"arn:{partition}:states:{self.session.region_name}:{account}:stateMachine:"
                f"{STATE_MACHINE_NAME}")

    def start(self, request: dict, name: str) -> str:
        sfn, machine = self.session.client("stepfunctions"), self._machine()
        gone = {"StateMachineDoesNotExist": f"state machine {machine} not found: is the responder stack deployed in "
                f"{self.session.region_name}? (--responder-region, --state-machine-arn)"}
        return self.call("start the execution", lambda: sfn.start_execution(
            stateMachineArn=machine, name=name, input=json.dumps(request))["executionArn"], missing=gone)

    def wait(self, arn: str, timeout: float) -> dict | None:
        sfn = self.session.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            described = self.call("follow the execution", lambda: sfn.describe_execution(executionArn=arn))
            if described["status"] != "RUNNING":
                return finished(described, lambda: self._history(arn))
            if time.monotonic() > deadline:
                return None
            time.sleep(POLL_SECONDS)

    def _history(self, arn: str) -> list[dict]:
        sfn = self.session.client("stepfunctions")
        pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn, reverseOrder=True)
        return self.call("read the execution history", lambda: [e for p in pages for e in p["events"]])

    def table(self):
        from responder.aws.dynamodb import IncidentTable

        return IncidentTable(self.session.client("dynamodb"), self.table_name)

    def _no_table(self) -> dict[str, str]:
        return {"ResourceNotFoundException": f"table {self.table_name} not found in {self.session.region_name} "
                                             "(--table: the responder stack's incident table)"}

    def get(self, incident_id: str) -> dict | None:
        return self.call("read the incident record", lambda: self.table().get(incident_id), missing=self._no_table())

    def scan(self, status: str | None, limit: int) -> list[dict]:
        return self.call("list incidents", lambda: list(self.table().scan(status=status, max_items=max(limit * 20, 1000))),
                         missing=self._no_table())

    def notifications(self) -> list[dict]:
        return []  # delivered by SNS to the topic's subscribers

    def close(self) -> None:
        pass


class Inbox:
    """An SQS queue subscribed to the responder's topic, in the in-memory AWS: what an on-call subscription
    receives. `read()` returns every message since the last read as {subject, message (parsed), attributes}."""

    def __init__(self, session: Any, topic_arn: str):
        self._sqs = session.client("sqs")
        self.url = self._sqs.create_queue(QueueName=f"oncall-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        session.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)

    def read(self) -> list[dict]:
        out = []
        while True:
            got = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return out
            for msg in got:
                body = json.loads(msg["Body"])
                out.append({"subject": body["Subject"], "message": json.loads(body["Message"]),
                            "attributes": {k: v["Value"] for k, v in body.get("MessageAttributes", {}).items()}})
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=msg["ReceiptHandle"])


def finished(described: dict, history: Callable[[], list[dict]]) -> dict:
    """The summary of an ended execution: its output, or (failed) Finalize's output from the history."""
    result = {"status": described["status"], "error": described.get("error"), "cause": described.get("cause"),
              "executionArn": described["executionArn"], "summary": None}
    if described.get("output"):
        result["summary"] = json.loads(described["output"])
        return result
    for event in history():
        details = event.get("stateExitedEventDetails") or {}
        if details.get("name") == "Finalize" and details.get("output"):
            result["summary"] = json.loads(details["output"])
            break
    return result


class Local:
    """The in-memory AWS: deployed afresh for each `start` (only the incident table for `status` and `list`); the
    table is kept in a file between commands, so duplicates, replays, `status` and `list` work across runs."""

    def __init__(self, args: argparse.Namespace, *, member: str | None = None, region: str | None = None,
                 deploy: bool = True):
        from contextlib import ExitStack

        from state_machines import local

        self._local = local
        self.region = region or args.responder_region or "eu-west-1"
        self.state = Path(args.local_state)
        self._stack = ExitStack()
        if deploy:
            self._stack.enter_context(local.aws(region=self.region))
        else:  # only the table: a plain in-memory DynamoDB is enough and starts in a fraction of the time
            from moto import mock_aws

            self._stack.enter_context(mock_aws())
        self._ddb = local.session(None, self.region).client("dynamodb")
        if deploy:
            self.dep = local.deploy(member_account=member or LOCAL_MEMBER, forensics_account=LOCAL_FORENSICS,
                                    region=self.region)
            self.table_name = self.dep.table_name
        else:
            self.table_name = DEFAULT_TABLE
            self._ddb.create_table(TableName=self.table_name, BillingMode="PAY_PER_REQUEST",
                                   AttributeDefinitions=[{"AttributeName": "incidentId", "AttributeType": "S"}],
                                   KeySchema=[{"AttributeName": "incidentId", "KeyType": "HASH"}])
        self._load()
        self._queue = None

    def _load(self) -> None:
        if not self.state.exists():
            return
        try:
            items = json.loads(self.state.read_text())
        except ValueError:
            raise CliError(f"{self.state} is not a local state file: remove it or pass --local-state", USAGE) from None
        for item in items:
            self._ddb.put_item(TableName=self.table_name, Item=item)

    def save(self) -> None:
        items = [i for p in self._ddb.get_paginator("scan").paginate(TableName=self.table_name) for i in p["Items"]]
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.state.write_text(json.dumps(items, indent=1))

    def seed(self, incident: dict) -> list[str]:
        """Create the named users (with one access key) and roles in the in-memory member account. The in-memory
        AWS cannot create a finding's own key or principal ids, and the responder resolves targets by those ids:
        `localized` points the finding at the ids just made."""
        iam, notes = self.dep.client("iam", incident["accountId"]), []
        self.substitutions: dict[str, str] = {}
        for identity in incident.get("identities", []):
            name = identity.get("name")
            try:
                if identity["type"] == "IAMUser":
                    user = iam.create_user(UserName=name)["User"]
                    key = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
                    notes.append(f"created IAM user {name} with an active access key")
                    if identity.get("accessKeyId", "").startswith("AKIA"):
                        self.substitutions[identity["accessKeyId"]] = key
                    if identity.get("principalId"):
                        self.substitutions[identity["principalId"]] = user["UserId"]
                elif identity["type"] == "AssumedRole":
                    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                     "Principal": {"Service": "ec2.amazonaws.com"}}]}
                    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
                    notes.append(f"created IAM role {name}")
                    if identity.get("principalId"):
                        self.substitutions[identity["principalId"].split(":", 1)[0]] = role["RoleId"]
            except iam.exceptions.EntityAlreadyExistsException:
                pass
        for instance in incident.get("instances", []):
            notes.append(f"instance {instance} does not exist in the in-memory account (ids cannot be chosen)")
        return notes

    def localized(self, request: Any) -> Any:
        """The request with the finding's key and principal ids replaced by the ones `seed` made."""
        text = json.dumps(request)
        for old, new in getattr(self, "substitutions", {}).items():
            text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
        return json.loads(text)

    def subscribe(self) -> None:
        self._queue = Inbox(self._local.session(None, self.region), self.dep.topic_arn)

    def notifications(self) -> list[dict]:
        return self._queue.read() if self._queue else []

    def start(self, request: dict, name: str) -> str:
        sfn = self._local.session(None, self.region).client("stepfunctions")
        return sfn.start_execution(stateMachineArn=self.dep.state_machine_arn, name=name,
                                   input=json.dumps(request))["executionArn"]

    def wait(self, arn: str, timeout: float) -> dict | None:
        try:
            run = self._local.wait(arn, self.dep, timeout=timeout)
        except TimeoutError:
            return None
        described = {"status": run.status, "error": run.error, "cause": run.cause, "executionArn": run.arn,
                     "output": json.dumps(run.output) if run.output else None}
        return finished(described, lambda: list(reversed(run.events)))

    def get(self, incident_id: str) -> dict | None:
        from responder.aws.dynamodb import IncidentTable

        return IncidentTable(self._ddb, self.table_name).get(incident_id)

    def scan(self, status: str | None, limit: int) -> list[dict]:
        from responder.aws.dynamodb import IncidentTable

        return list(IncidentTable(self._ddb, self.table_name).scan(status=status))

    def close(self) -> None:
        self._stack.close()


# -- custody ---------------------------------------------------------------------------------------------------
class Custody:
    """Reads what `verify` checks: the manifest and its signature in the evidence bucket, the custody key, the
    snapshots. `sessions(account)` is a boto3 session in that account, or None when it cannot be read."""

    def __init__(self, sessions: Callable[[str | None], Any], *, region: str, bucket: str, account: str,
                 call: Callable[..., Any]):
        self._sessions, self.region, self.bucket, self.account, self._call = sessions, region, bucket, account, call

    def _client(self, service: str, account: str | None = None) -> Any:
        session = self._sessions(account)
        return None if session is None else session.client(service, region_name=self.region)

    def read(self, key: str, version: str | None = None) -> tuple[bytes, str | None] | None:
        s3 = self._client("s3", self.account)
        params = {"Bucket": self.bucket, "Key": key, **({"VersionId": version} if version else {})}
        try:
            got = self._call(f"read s3://{self.bucket}/{key}", lambda: s3.get_object(**params),
                             missing={"NoSuchKey": "", "NoSuchBucket": "", "NoSuchVersion": ""})
        except CliError as exc:
            if str(exc) == "":
                return None
            raise
        return got["Body"].read(), got.get("VersionId")

    def versions(self, prefix: str) -> dict[str, int]:
        """Every key under `prefix` with its number of versions (s3:ListBucketVersions)."""
        s3 = self._client("s3", self.account)
        counts: dict[str, int] = {}

        def listing() -> None:
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    counts[version["Key"]] = counts.get(version["Key"], 0) + 1
                for marker in page.get("DeleteMarkers", []):
                    counts[marker["Key"]] = counts.get(marker["Key"], 0) + 1

        try:
            self._call(f"list s3://{self.bucket}/{prefix}*", listing, missing={"NoSuchBucket": ""})
        except CliError as exc:
            if str(exc) == "":
                return {}
            raise
        return counts

    def key(self) -> Any:
        from responder.aws.kms import CustodyKey

        return CustodyKey(self._client("kms", self.account), "")

    def describe(self, account: str, region: str, ids: list[str]) -> dict | None:
        ec2 = self._client("ec2", account) if region == self.region else None
        if ec2 is None:
            return None
        found: dict[str, dict] = {}
        for sid in ids:  # one by one: a missing id fails a whole DescribeSnapshots call
            try:
                snaps = self._call("describe snapshots", lambda: ec2.describe_snapshots(SnapshotIds=[sid]),
                                   missing={"InvalidSnapshot.NotFound": ""})["Snapshots"]
            except CliError as exc:
                if str(exc) == "":
                    continue
                raise
            for snap in snaps:
                found[snap["SnapshotId"]] = {"tags": {t["Key"]: t["Value"] for t in snap.get("Tags", [])}}
        if found:
            locks = self._call("describe snapshot locks", lambda: ec2.describe_locked_snapshots(
                SnapshotIds=sorted(found))).get("Snapshots", [])
            for lock in locks:
                found[lock["SnapshotId"]]["lock"] = lock
        return found


def verify(custody: Custody, incident_id: str) -> tuple[list[str], list[str], dict]:
    """(problems, notes, facts) of an incident's chain of custody: every manifest of every attempt (each written once,
    signed, verifying, naming itself), then every snapshot the latest one names. Raises CliError(NOT_FOUND) when the
    incident has no manifest."""
    from responder import custody as chain
    from responder import manifest as manifests

    prefix = manifests.prefix(incident_id)
    versions = {k: n for k, n in custody.versions(prefix).items() if k.startswith(f"incidents/{incident_id}/")}
    if not any(chain.manifest_name(k) and not chain.manifest_name(k)[2] for k in versions):
        raise CliError(f"no manifest for {incident_id} under s3://{custody.bucket}/{prefix}", NOT_FOUND)

    def read(key: str) -> bytes | None:
        got = custody.read(key)
        return None if got is None else got[0]

    problems, notes, found = custody._call(
        "verify the signatures (kms:Verify)", lambda: chain.check_chain(versions, read, custody.key(), incident_id))
    manifest = found["manifest"] or {}
    snapshot_problems, snapshot_notes = chain.check_snapshots(manifest, custody.describe)
    facts = {"manifest": f"s3://{custody.bucket}/{found['latest']}", "manifests": found["manifests"],
             "snapshots": len(chain.manifest_snapshots(manifest))}
    return problems + snapshot_problems, notes + snapshot_notes, facts


def cmd_answer(args: argparse.Namespace, out) -> int:
    """approve / deny: answer the incident's pending approval (responder.approval.answer)."""
    from responder.approval import ApprovalRefused, answer

    if args.local:
        raise CliError("an execution waiting for an approval lives in one process of the in-memory AWS: with --local "
                       "use state_machines.local.approve/deny (README \"Approval\")", USAGE)
    decision = "approve" if args.command == "approve" else "deny"
    backend = Aws(args)
    caller = backend.call("who am I (sts:GetCallerIdentity)",
                          lambda: backend.session.client("sts").get_caller_identity()["Arn"])
    try:
        sent = backend.call(f"{decision} {args.incident}", lambda: answer(
            table=backend.table(), sfn=backend.session.client("stepfunctions"), caller_arn=caller,
            incident_id=args.incident, decision=decision, reason=args.reason or ""), missing=backend._no_table())
    except ApprovalRefused as exc:
        raise CliError(f"refused: {exc}", NOT_FOUND if "no incident" in str(exc) else USAGE) from None
    verb = "approved: containment goes on" if decision == "approve" else "denied: the execution stands down"
    print(f"{args.incident} {verb} (by {sent['by']} at {sent['at']}: {sent['reason']})", file=out)
    print(f"follow it with: python -m cli status {args.incident}", file=out)
    return OK


def release_input(args: argparse.Namespace) -> dict[str, Any]:
    """The execution input of `release` (responder.release validates it again in Triage)."""
    request: dict[str, Any] = {"incidentId": args.incident, "reason": args.reason, "iamUsers": list(args.user or [])}
    if args.role:
        request["roles"] = list(args.role)
    if args.instance:
        request["instances"] = list(args.instance)
    for flag, key in (("console", "restoreConsoleAccess"), ("autoscaling", "restoreAutoScaling"),
                      ("dry_run", "dryRun")):
        if getattr(args, flag):
            request[key] = True
    if not (request["iamUsers"] or args.role or args.instance):
        raise CliError("name at least one target: --user, --role or --instance", USAGE)
    return {"release": request}


def cmd_release(args: argparse.Namespace, out) -> int:
    """release: undo this responder's containment of named targets of an incident (responder.release)."""
    if args.local:
        raise CliError("with --local, run the release request through state_machines.local.execute (README "
                       "\"Release\")", USAGE)
    request = release_input(args)
    backend = Aws(args)
    try:
        arn = backend.start(request, execution_name(f"release-{args.incident}"[:60]))
        print(f"started {arn}", file=out)
        result = backend.wait(arn, args.timeout)
        if result is None:
            print(f"still running after {args.timeout:g} s; follow it with: python -m cli status {args.incident}",
                  file=out)
            return RUNNING
        summary = result.get("summary") or {}
        print(json.dumps(result, indent=1, default=str) if args.json else render_summary(result), file=out)
        for target in (summary.get("release") or {}).get("targets") or []:
            line = f"  {target.get('target')}: {target.get('status')}"
            if target.get("conflicts"):
                line += " - " + "; ".join(target["conflicts"])
            print(line, file=out)
            for extra in ([target["consoleAccess"]] if target.get("consoleAccess") else []) + list(
                    target.get("notes") or []):  # the secret's ARN, never a password
                print(f"    {extra}", file=out)
        return OK if result["status"] == "SUCCEEDED" else FAILED
    finally:
        backend.close()


def cmd_verify(args: argparse.Namespace, out) -> int:
    custody = _custody(args)
    problems, notes, facts = verify(custody, args.incident)
    if args.json:
        print(json.dumps({"incidentId": args.incident, "verified": not problems, "problems": problems,
                          "notes": notes, **facts}, indent=1), file=out)
    else:
        print(f"{args.incident}: latest manifest {facts['manifest']} ({facts['manifests']} manifest(s) in the "
              f"chain), {facts.get('snapshots', 0)} snapshot(s) named", file=out)
        for line in problems:
            print(f"  MISMATCH  {line}", file=out)
        for line in notes:
            print(f"  note      {line}", file=out)
        print("verified: every manifest is signed and written once, and every checked snapshot matches the latest"
              if not problems
              else f"NOT VERIFIED: {len(problems)} mismatch(es)", file=out)
    return FAILED if problems else OK


def _custody(args: argparse.Namespace) -> Custody:
    """The evidence bucket as `verify` and `report` read it: the in-memory AWS with --local, else your credentials
    (of the forensics account)."""
    from stacks import names

    if args.local:
        from moto.core.models import MockAWS

        from state_machines import local

        if not MockAWS._mocks_active:
            raise CliError("--local reads the in-memory AWS of this process (tests, or `--local start ... "
                           "--verify`): none is running", USAGE)
        region = args.region or args.responder_region or "eu-west-1"
        account = args.forensics_account or LOCAL_FORENSICS
        return Custody(lambda a: local.session(a, region), region=region, account=account,
                       bucket=args.bucket or names.evidence_bucket(account, region),
                       call=lambda what, fn, missing=None: _local_call(what, fn, missing))
    backend = Aws(args)
    region = args.region or backend.session.region_name
    sts = backend.session.client("sts")
    account = backend.call("who am I (sts:GetCallerIdentity)", lambda: sts.get_caller_identity()["Account"])
    if args.forensics_account and args.forensics_account != account:
        raise CliError(f"your credentials are of account {account}, not the forensics account "
                       f"{args.forensics_account} (--profile)", USAGE)
    return Custody(lambda a: backend.session if a in (None, account) else None, region=region,
                   account=account, bucket=args.bucket or names.evidence_bucket(account, region), call=backend.call)


def _evidence_options(parser: argparse.ArgumentParser) -> None:
    """Where the evidence is, as `verify` and `report` read it (`_custody`)."""
    parser.add_argument("--bucket", help="the evidence bucket (default ir-evidence-<forensics account>-<region>)")
    parser.add_argument("--forensics-account", metavar="ACCOUNT",
                        help="the forensics account (default: the account of your credentials)")
    parser.add_argument("--region", help="the region of the evidence (default --responder-region / your config)")


REPORT_NAME = re.compile(r"report-(\d{4})(\.html|-events\.csv)$")


def cmd_report(args: argparse.Namespace, out) -> int:
    """The incident report Finalize stored with the evidence (the latest attempt's, or --attempt), written to
    --out (default: the current directory), each file's SHA-256 checked against the attempt's signed manifest."""
    import hashlib
    from pathlib import Path

    custody = _custody(args)
    base = f"incidents/{args.incident}/"
    found: dict[int, dict[str, str]] = {}
    for key in custody.versions(base + "report-"):
        match = REPORT_NAME.search(key)
        if match and key == base + match.group(0):
            found.setdefault(int(match.group(1)), {})["html" if match.group(2) == ".html" else "csv"] = key
    if not found:
        raise CliError(f"no report for {args.incident} under s3://{custody.bucket}/{base}report-", NOT_FOUND)
    attempt = args.attempt or max(found)
    if attempt not in found:
        raise CliError(f"no report of attempt {attempt} (attempts: {', '.join(map(str, sorted(found)))})", NOT_FOUND)
    manifest = custody.read(f"{base}manifest-{attempt:04d}.json")
    recorded = (json.loads(manifest[0]).get("report") or {}) if manifest else {}
    target = Path(args.out or ".")
    target.mkdir(parents=True, exist_ok=True)
    written, problems = [], []
    for kind in ("html", "csv"):
        key = found[attempt].get(kind)
        if not key:
            problems.append(f"{kind}: not stored")
            continue
        body, _ = custody.read(key) or (b"", None)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        expected = (recorded.get(kind) or {}).get("sha256")
        if expected and expected != digest:
            problems.append(f"{key}: SHA-256 {digest} is not the manifest's {expected}")
        path = target / f"{args.incident}-{key.rsplit('/', 1)[1]}"
        path.write_bytes(body)
        written.append({"path": str(path), "key": key, "sha256": digest,
                        "checked": "manifest" if expected else "no manifest names it"})
    if args.json:
        print(json.dumps({"incidentId": args.incident, "attempt": attempt, "files": written, "problems": problems},
                         indent=1), file=out)
    else:
        for item in written:
            print(f"{item['path']}  (s3://{custody.bucket}/{item['key']}, {item['sha256']}, {item['checked']})",
                  file=out)
        for line in problems:
            print(f"  MISMATCH  {line}", file=out)
    return FAILED if problems else OK


def _local_call(what: str, fn: Callable[[], Any], missing: dict[str, str] | None = None) -> Any:
    from botocore.exceptions import ClientError

    try:
        return fn()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if missing and code in missing:
            raise CliError(missing[code], AWS_ERROR) from None
        raise CliError(f"{what}: {exc}", AWS_ERROR) from None


# -- rendering ---------------------------------------------------------------------------------------------------
def _targets(rows: list[dict]) -> list[str]:
    return [f"    {r.get('type', ''):<12} {r.get('target') or r.get('name') or '?':<60} {r.get('status') or ''}"
            + (f"  ({r['reason']})" if r.get("reason") else "") for r in rows]


def render_summary(result: dict) -> str:
    s = result.get("summary") or {}
    lines = [f"incident {s.get('incidentId') or '?'}: {s.get('outcome') or result['status']}"
             f"   (execution {result['executionArn'].rsplit(':', 1)[-1]}: {result['status']}"
             + (f", {result['error']}" if result.get("error") else "") + ")"]
    if not s:
        lines.append(f"  cause: {result.get('cause')}")
        return "\n".join(lines)
    lines.append(f"  account {s.get('accountId')}  region {s.get('region')}  cutoff {s.get('cutoff')}"
                 + (f"  severity {s['severity']}" if s.get("severity") is not None else ""))
    if s.get("dispositionReason"):
        lines.append(f"  why: {s['dispositionReason']}")
    if s.get("attempt"):
        lines.append(f"  attempt {s['attempt'].get('attempt')} ({s['attempt'].get('trigger')})")
    rows = [{"type": t.get("type"), "target": t.get("target"), "status": t.get("status"), "reason": t.get("reason")}
            for t in s.get("identities") or []]
    rows += [{"type": "Instance", "target": i.get("instanceId"),
              "status": (i.get("isolation") or {}).get("status") or "failed"} for i in s.get("instances") or []]
    if rows:
        lines += ["  targets:"] + _targets(rows)
    for failure in s.get("failures") or []:
        lines.append(f"  FAILED {failure.get('api') or failure.get('step')} on {failure.get('target')}: "
                     f"{failure.get('error')} {failure.get('message') or ''}".rstrip())
    for manual in s.get("manualSteps") or []:
        lines.append(f"  manual steps for {manual['target']}:")
        lines += [f"    - {step}" for step in manual["steps"]]
    if s.get("plan") is not None:
        lines.append(f"  plan (dry run, nothing changed): {len(s['plan'])} change(s)")
        lines += [f"    {p.get('api'):<28} {p.get('target')}" for p in s["plan"]]
    for capture in s.get("scope") or []:
        lines.append(f"  scope {capture['principal']}: {capture['status']}"
                     + (f", {capture['events']} CloudTrail events at {capture['uri']}" if capture.get("uri")
                        and capture.get("events") is not None else "")
                     + (f" ({capture['error']})" if capture.get("error") else ""))
        lines += _trail_lines(capture)
    if s.get("manifest"):
        lines.append(f"  manifest: {s['manifest']['uri']}  {s['manifest']['sha256']}")
    if s.get("record"):
        lines.append(f"  record: table {s['record'].get('table')}, incidentId {s['record'].get('incidentId')}")
    if s.get("notification"):
        lines.append(f"  notified: {s['notification']['subject']}")
    for error in s.get("recordingErrors") or []:
        lines.append(f"  NOT RECORDED ({error['step']}): {error['error']} {error['message']}")
    return "\n".join(lines)


def render_record(item: dict) -> str:
    attempts = item.get("attempts") or []
    lines = [f"incident {item['incidentId']}: {item.get('status')}",
             f"  origin {item.get('origin')}  account {item.get('accountId')}  region {item.get('region')}"
             + (f"  severity {item['severity']}" if item.get("severity") is not None else "")
             + (f"  finding {item['findingType']}" if item.get("findingType") else ""),
             f"  cutoff {item.get('cutoff')}" + (f" (earlier: {', '.join(item['previousCutoffs'])})"
                                                  if item.get("previousCutoffs") else "")
             + f"  created {item.get('createdAt')}  updated {item.get('updatedAt')}",
             f"  attempts {len(attempts)}: " + ", ".join(f"{a.get('execution')} ({a.get('trigger')})" for a in attempts)
             + (f"; duplicates {item['duplicates']}" if item.get("duplicates") else "")]
    if item.get("dispositionReason"):
        lines.append(f"  why: {item['dispositionReason']}")
    if item.get("targetStatus"):
        lines += ["  targets:"] + _targets(item["targetStatus"])
    if item.get("timeline"):
        lines.append("  timeline:")
        for e in item["timeline"]:
            what = e.get("api") or e.get("step") or ""
            extra = e.get("error") or e.get("requestId") or e.get("detail") or ""
            lines.append(f"    {str(e.get('time'))[:19]:<19} {e.get('task', ''):<9} {e.get('status', ''):<18} "
                         f"{what:<26} {e.get('target', '')}  {extra}".rstrip())
    for capture in item.get("scope") or []:
        lines.append(f"  scope {capture.get('principal')}: {capture.get('status')}"
                     + (f" {capture.get('uri')} {capture.get('sha256')}" if capture.get("uri") else ""))
        lines += _trail_lines(capture)
    for manual in item.get("manualSteps") or []:
        lines.append(f"  manual steps for {manual['target']}:")
        lines += [f"    - {step}" for step in manual["steps"]]
    if item.get("plan"):
        lines.append(f"  plan: {len(item['plan'])} change(s)")
        lines += [f"    {p.get('api'):<28} {p.get('target')}" for p in item["plan"]]
    if item.get("manifest"):
        m = item["manifest"]
        lines.append(f"  manifest: {m.get('uri')} (version {m.get('versionId')})  {m.get('sha256')}")
    if item.get("notification"):
        lines.append(f"  notified: {item['notification'].get('subject')}")
    if item.get("error"):
        lines.append(f"  error: {item['error'].get('Error')}: {str(item['error'].get('Cause'))[:300]}")
    return "\n".join(lines)


def render_list(items: list[dict]) -> str:
    lines = [f"{'INCIDENT':<40} {'STATUS':<22} {'SEV':>4} {'ACCOUNT':<13} {'UPDATED':<21} TARGETS"]
    for item in items:
        targets = item.get("targets") or {}
        names = [f"{i.get('type')}/{i.get('name') or ''}" for i in targets.get("identities", [])]
        names += targets.get("instances", [])
        sev = f"{item['severity']:g}" if isinstance(item.get("severity"), (int, float)) else "-"
        lines.append(f"{item['incidentId']:<40} {item.get('status', ''):<22} {sev:>4} "
                     f"{item.get('accountId', ''):<13} {item.get('updatedAt', ''):<21} {', '.join(names)}")
    return "\n".join(lines)


# -- commands ----------------------------------------------------------------------------------------------------
def cmd_start(args: argparse.Namespace, out) -> int:
    if args.verify and not args.local:
        raise CliError("start --verify works with --local; against AWS run `verify` with credentials of the "
                       "forensics account", USAGE)
    built = build_input(args)
    incident = built["incident"]
    backend = (Local(args, member=incident["accountId"], region=incident["region"]) if args.local else Aws(args))
    try:
        if args.local:
            for note in backend.seed(incident):
                print(f"local: {note}", file=out)
            backend.subscribe()
        name = execution_name(incident["incidentId"])
        arn = backend.start(backend.localized(built["input"]) if args.local else built["input"], name)
        print(f"started {arn}", file=out)
        if args.no_wait:
            print(f"follow it with: python -m cli{' --local' if args.local else ''} status {incident['incidentId']}",
                  file=out)
            return OK
        result = backend.wait(arn, args.timeout)
        if result is None:
            print(f"still running after {args.timeout:g} s; follow it with: python -m cli status "
                  f"{incident['incidentId']}", file=out)
            return RUNNING
        if args.json:
            print(json.dumps(result, indent=1, default=str), file=out)
        else:
            print(render_summary(result), file=out)
            for note in backend.notifications():
                print(f"  notification delivered: {note['message'].get('headline')}", file=out)
        summary = result.get("summary") or {}
        code = FAILED if result["status"] != "SUCCEEDED" or summary.get("outcome") in FAILING_OUTCOMES else OK
        if args.verify and summary.get("manifest"):  # the in-memory AWS is still there: check its custody
            checked = cmd_verify(argparse.Namespace(**{**vars(args), "incident": incident["incidentId"],
                                                      "bucket": None, "forensics_account": None,
                                                      "region": backend.region}), out)
            code = code or checked
        return code
    finally:
        if args.local:
            backend.save()
        backend.close()


def analyze_request(args: argparse.Namespace) -> dict[str, Any]:
    """The ``{"analyze": ...}`` request from the options, validated with the state machine's own triage (the
    incident record is checked when it runs)."""
    from responder.errors import InvalidInput
    from responder.triage import normalize

    if bool(args.instance) == bool(args.image):
        raise CliError("name the workstation: --instance ID (one in the forensics account), or --image AMI with "
                       "--instance-type and --subnet", USAGE)
    workstation: dict[str, Any] = {"instanceId": args.instance} if args.instance else {
        "imageId": args.image, "instanceType": args.instance_type, "subnetId": args.subnet}
    if args.image and args.security_group:
        workstation["securityGroupIds"] = args.security_group
    if args.image and args.key_name:
        workstation["keyName"] = args.key_name
    body: dict[str, Any] = {"incidentId": args.incident, "reason": args.reason, "workstation": workstation}
    if args.live_response_port is not None:
        body["liveResponse"] = {"port": args.live_response_port}
    if args.dry_run:
        body["dryRun"] = True
    request = {"analyze": body}
    try:
        normalize(request, execution_name="cli")
    except InvalidInput as exc:
        raise CliError(f"invalid request: {exc}", USAGE) from None
    return request


def render_analysis(summary: dict) -> list[str]:
    found = summary.get("analysis") or {}
    lines = [f"  workstation {found.get('workstation')} ({found.get('availabilityZone')})"
             + (" launched for the incident" if found.get("launched") else "")]
    lines += [f"    {v.get('device') or '-':<10} {v.get('volumeId')} from {v.get('snapshotId')}: {v.get('status')}"
              for v in found.get("volumes") or []]
    if found.get("refused"):
        lines.append(f"  {found['refused']} copy(ies) refused (not verified against the record): see the record")
    lines += [f"  live response: tcp/{r.get('port')} from {r.get('cidr')} on {r.get('groupId')}: {r.get('status')}"
              for r in found.get("liveResponse") or []]
    if found.get("error"):
        lines.append(f"  {found['error']}: {found.get('message') or ''}")
    return lines


def cmd_analyze(args: argparse.Namespace, out) -> int:
    if args.local:
        raise CliError("analyze works against AWS: the in-memory AWS of --local keeps no evidence snapshots between "
                       "commands", USAGE)
    request = analyze_request(args)
    backend = Aws(args)
    try:
        arn = backend.start(request, execution_name(args.incident))
        print(f"started {arn}", file=out)
        result = backend.wait(arn, args.timeout)
        if result is None:
            print(f"still running after {args.timeout:g} s; follow it with: python -m cli status {args.incident}",
                  file=out)
            return RUNNING
        if args.json:
            print(json.dumps(result, indent=1, default=str), file=out)
        else:
            print(render_summary(result), file=out)
            print("\n".join(render_analysis(result.get("summary") or {})), file=out)
        return OK if result["status"] == "SUCCEEDED" else FAILED
    finally:
        backend.close()


def cmd_status(args: argparse.Namespace, out) -> int:
    backend = Local(args, deploy=False) if args.local else Aws(args)
    try:
        item = backend.get(args.incident)
    finally:
        backend.close()
    if item is None:
        raise CliError(f"no incident {args.incident} in table {backend.table_name}"
                       + (f" (local state {backend.state})" if args.local else ""), NOT_FOUND)
    print(json.dumps(item, indent=1, default=str) if args.json else render_record(item), file=out)
    return OK


def cmd_list(args: argparse.Namespace, out) -> int:
    backend = Local(args, deploy=False) if args.local else Aws(args)
    try:
        items = backend.scan(args.status, args.limit)
    finally:
        backend.close()
    items = sorted(items, key=lambda i: str(i.get("updatedAt") or ""), reverse=True)[:args.limit]
    if args.json:
        print(json.dumps(items, indent=1, default=str), file=out)
    elif not items:
        print("no incidents" + (f" with status {args.status}" if args.status else ""), file=out)
    else:
        print(render_list(items), file=out)
    return OK


def _common(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Options every command takes, before or after the command's name."""
    def d(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument("--local", action="store_true", default=d(False),
                        help="use an in-memory AWS instead of your account (no credentials, no network); the "
                             "incident table is kept in --local-state between commands")
    parser.add_argument("--local-state", default=d(str(DEFAULT_STATE)), metavar="FILE",
                        help=f"with --local: where the incident table is kept (default {DEFAULT_STATE})")
    parser.add_argument("--profile", default=d(None), help="AWS profile of the security account (default: your "
                                                           "environment)")
    parser.add_argument("--responder-region", metavar="REGION", default=d(None),
                        help="region the responder is deployed in (default: your AWS configuration's region)")
    parser.add_argument("--table", default=d(DEFAULT_TABLE),
                        help=f"the incident table (default {DEFAULT_TABLE}; the stack's incidentTableName)")


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _common(common, defaults=False)
    top = argparse.ArgumentParser(
        prog="python -m cli", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Start, follow and list incident responses of the GuardDuty auto-responder. Every response runs "
                    f"in the state machine {STATE_MACHINE_NAME}, exactly as for a GuardDuty finding: containment, "
                    "evidence, the incident record, the manifest and one notification. Nothing is ever undone.")
    _common(top, defaults=True)
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    start = commands.add_parser(
        "start", help="contain now: a GuardDuty finding, or named users/roles/instances", parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Start a response. Either --finding (re-run a GuardDuty finding), or a manual request naming "
                    "targets with --user/--role/--instance plus --account, --region and --reason. The request is "
                    "validated first (the state machine's own triage): a bad field fails here and nothing starts. "
                    "Then waits for the outcome and prints it (--no-wait to return at once).")
    start.add_argument("--finding", metavar="FILE",
                       help="a GuardDuty finding as JSON: `aws guardduty get-findings` output (one finding), a bare "
                            "finding, or the EventBridge event; '-' reads standard input")
    start.add_argument("--user", action="append", metavar="NAME", help="IAM user to quarantine (repeatable)")
    start.add_argument("--role", action="append", metavar="NAME",
                       help="IAM role whose sessions to revoke (repeatable)")
    start.add_argument("--instance", action="append", metavar="ID", help="EC2 instance to isolate (repeatable)")
    start.add_argument("--account", help="12-digit account of the targets")
    start.add_argument("--region", help="region of the targets (instances; sessions are revoked account-wide)")
    start.add_argument("--reason", help="why (recorded in the incident and the notification)")
    start.add_argument("--incident-id", metavar="ID",
                       help="incident id to use or to add to (default IR-<UTC date-time>); a second request with the "
                            "same id shares the incident and its cut-off")
    start.add_argument("--dry-run", action="store_true",
                       help="plan only: list every change (API and target) that would be made; change nothing")
    start.add_argument("--level", choices=("automatic", "approval", "observe"),
                       help="the containment level of this request (default automatic: a person asked); approval "
                            "waits for `approve` before containing (a target with the protection tag is then "
                            "contained too)")
    start.add_argument("--no-wait", action="store_true", help="return once started")
    start.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                       help="how long to wait for the outcome (default 300; evidence of large volumes takes longer)")
    start.add_argument("--state-machine-arn", help=f"default: {STATE_MACHINE_NAME} in your account and region")
    start.add_argument("--json", action="store_true", help="print the execution summary as JSON")
    start.add_argument("--verify", action="store_true",
                       help="with --local: then check the incident's chain of custody (as `verify` does)")
    start.set_defaults(run=cmd_start)

    status = commands.add_parser(
        "status", help="one incident: status, every action, scope, manifest, notification", parents=[common],
        description="Show the incident record: status and outcome, every attempt, the timeline of every action (what, "
                    "target, when, result, request id or error), the CloudTrail scope and its Athena query, the "
                    "evidence manifest's location and SHA-256, and the notification subject.")
    status.add_argument("incident", help="incident id: gd-<finding id> for findings, or the manual request's id")
    status.add_argument("--json", action="store_true", help="print the record as JSON")
    status.set_defaults(run=cmd_status)

    listing = commands.add_parser("list", help="recent incidents, newest first", parents=[common],
                                  description="List incidents, most recently updated first.")
    listing.add_argument("--status", help="only this status: in_progress, contained, partially_contained, failed, "
                                          "protected, protection_unverified, manual_action_required, dry_run_plan, "
                                          "not_handled")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listing.add_argument("--json", action="store_true", help="print the records as JSON")
    listing.set_defaults(run=cmd_list)

    for name, text in (("approve", "approve a pending containment: the execution contains the targets"),
                       ("deny", "deny a pending containment: the execution stands down, nothing is contained")):
        answer = commands.add_parser(
            name, help=text, parents=[common],
            description=f"{text[0].upper()}{text[1:]}. Reads the task token from the incident record, refuses an "
                        "answered or expired request, sends the decision (states:SendTaskSuccess) with your identity "
                        "(sts:GetCallerIdentity) and reason; both go into the record and the manifest.")
        answer.add_argument("incident", help="incident id (the approval notification names it)")
        answer.add_argument("--reason", required=True, help="why (recorded with your identity)")
        answer.set_defaults(run=cmd_answer)

    work = commands.add_parser(
        "analyze", help="open an incident's disks on a forensic workstation (forensics account)", parents=[common],
        description="Create volumes from the incident's verified forensics copies in the workstation's Availability "
                    "Zone and attach them (the snapshots are never modified); optionally allow live response: one "
                    "TCP port from the workstation's private address /32 on the quarantine group of the incident's "
                    "instances. The workstation must be tagged ir:purpose=forensic-workstation in the forensics "
                    "account, or be started from an AMI of that account tagged the same way.")
    work.add_argument("incident", help="incident id (answered: contained, with evidence)")
    work.add_argument("--instance", metavar="ID", help="the workstation: an instance of the forensics account")
    work.add_argument("--image", metavar="AMI", help="start a workstation from this forensic AMI")
    work.add_argument("--instance-type", default="c5.4xlarge", help="with --image (default c5.4xlarge)")
    work.add_argument("--subnet", metavar="ID", help="with --image: the forensics account's subnet")
    work.add_argument("--security-group", action="append", metavar="ID", help="with --image (repeatable)")
    work.add_argument("--key-name", help="with --image: the key pair to log in with")
    work.add_argument("--live-response-port", type=int, metavar="PORT",
                      help="also allow TCP on this one port from the workstation to the contaminated instances")
    work.add_argument("--reason", default="forensic analysis", help="why (recorded)")
    work.add_argument("--dry-run", action="store_true", help="plan only: change nothing")
    work.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                      help="how long to wait (default 900)")
    work.add_argument("--state-machine-arn", help=f"default: {STATE_MACHINE_NAME} in your account and region")
    work.add_argument("--json", action="store_true", help="print the execution summary as JSON")
    work.set_defaults(run=cmd_analyze)

    rel = commands.add_parser(
        "release", help="undo this responder's containment of named targets of an incident (on request only)",
        parents=[common],
        description="Start a release request (README \"Release\"): the responder undoes exactly what its containment "
                    "changed on each named target, read from the incident record, through the release role; it "
                    "refuses, naming the target, when a target changed since containment. Evidence and termination "
                    "protection are never touched. Exit code 0 released (or nothing left), 1 refused or failed.")
    rel.add_argument("incident", help="incident id")
    rel.add_argument("--reason", required=True, help="why (recorded in the timeline and the manifest)")
    rel.add_argument("--user", action="append", metavar="NAME", help="an IAM user to release (repeatable)")
    rel.add_argument("--role", action="append", metavar="NAME", help="a role to release (repeatable)")
    rel.add_argument("--instance", action="append", metavar="ID", help="an instance to release (repeatable)")
    rel.add_argument("--console", action="store_true",
                     help="also restore console access of the --user targets (restoreConsoleAccess): a new password, "
                          "reset required, in a secret of the responder's account")
    rel.add_argument("--autoscaling", action="store_true",
                     help="also re-attach the --instance targets to their Auto Scaling group (restoreAutoScaling)")
    rel.add_argument("--dry-run", action="store_true", help="plan only: list every undo call; change nothing")
    rel.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS", help="how long to wait (default 300)")
    rel.add_argument("--state-machine-arn", help=f"default: {STATE_MACHINE_NAME} in your account and region")
    rel.add_argument("--json", action="store_true", help="print the execution summary as JSON")
    rel.set_defaults(run=cmd_release)

    check = commands.add_parser(
        "verify", help="check an incident's chain of custody: signature, snapshots' hashes and locks",
        parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Check the evidence manifests of an incident: each attempt's manifest written once and signed "
                    "(the forensics account's custody key), and every snapshot the latest names against AWS - "
                    "present, tags ir:hash and ir:incident as "
                    "recorded, locked at least as long as recorded. Use credentials of the forensics account "
                    "(--profile). Prints every mismatch; exit code 0 verified, 1 mismatch, 3 no manifest.")
    check.add_argument("incident", help="incident id")
    _evidence_options(check)
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(run=cmd_verify)

    page = commands.add_parser(
        "report", help="write an incident's report (HTML page and events CSV) here",
        parents=[common], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Fetch the incident report Finalize stored with the evidence (report-<attempt>.html and "
                    "report-<attempt>-events.csv beside the attempt's manifest) and write both files locally, "
                    "each checked against the SHA-256 the signed manifest records. Prints the paths; opens nothing. "
                    "Use credentials of the forensics account (--profile).")
    page.add_argument("incident", help="incident id")
    page.add_argument("--attempt", type=int, help="the attempt (default: the latest)")
    page.add_argument("--out", metavar="DIR", help="where to write (default: the current directory)")
    _evidence_options(page)
    page.add_argument("--json", action="store_true", help="print the files as JSON")
    page.set_defaults(run=cmd_report)
    return top


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    args = parser().parse_args(argv)
    try:
        return args.run(args, out)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted (an execution already started keeps running: see status)", file=sys.stderr)
        return FAILED
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK


def _trail_lines(capture: dict) -> list[str]:
    """The organization trail's query of a capture (named query, execution, outcome), else the written-down query."""
    trail = capture.get("trail") or {}
    if trail.get("queryExecutionId") or trail.get("status") in ("refused", "failed"):
        return [f"    trail: {trail.get('status')} {trail.get('namedQuery') or ''} {trail.get('queryExecutionId') or ''}"
                f" {trail.get('reason') or trail.get('error') or trail.get('detail') or ''}".rstrip()
                + f" (source: {capture.get('source') or '-'})"]
    return [f"    athena: {capture['athenaQuery']}"] if capture.get("athenaQuery") else []


if __name__ == "__main__":
    sys.exit(main())

