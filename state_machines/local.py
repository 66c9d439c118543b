"""Run the shipped responder locally, against an in-memory AWS (moto): no account, no network.

The very same files ship and run here: `state_machines/containment.asl.json` is the state machine definition
(only the `${...}` function ARNs are substituted, as CDK does), and every Task runs our Lambda handler named by
the function's `Handler` setting, in-process, with the function's environment variables.

    from state_machines import local

    with local.aws():                                   # an in-memory AWS, waits fast-forwarded
        dep = local.deploy(member_account="444455556666", forensics_account="999988887777", region="eu-west-1")
        iam = dep.client("iam")                          # acts in the member account
        iam.create_user(UserName="ci-deployer")
        run = local.execute(event, dep)                  # runs the state machine to the end
        run.status, run.output, run.error, run.cause, run.states

`deploy()` creates what the CDK stacks create (responder, member and forensics resources) in the accounts given;
all three may be one account. `deliver(event, dep)` first applies the EventBridge rules' patterns, as AWS would
(GuardDuty findings, Trusted Advisor "Exposed Access Keys", AWS Health AWS_RISK_CREDENTIALS_EXPOSED).
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
import traceback
import types
import uuid
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

_ROOT = Path(__file__).resolve().parent.parent
for _p in (_ROOT, _ROOT / "lambdas"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from stacks import names  # noqa: E402
from stacks.catalog import ASL_PATH, EVENT_PATTERN, FUNCTIONS, SIGNAL_PATTERNS, STATE_MACHINE_NAME  # noqa: E402

DEFAULT_ACCOUNT = "123456789012"  # moto's default: the security (responder) account
LOCAL_ADMIN_ROLE = "ir-local-admin"  # the local stand-in for OrganizationAccountAccessRole, to build worlds
MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
    "iam": {"load_aws_managed_policies": True},
}

_state = threading.local()
_invoke_lock = threading.RLock()


# --------------------------------------------------------------------------------------------------------
# The in-memory AWS
# --------------------------------------------------------------------------------------------------------
@dataclass
class LocalAws:
    """What `aws()` yields: a handle on the in-memory AWS."""

    region: str
    waited_seconds: list[float] = field(default_factory=list)

    def session(self, account: str | None = None, region: str | None = None):
        return session(account, region or self.region)


@contextmanager
def aws(*, region: str = "us-east-1") -> Iterator[LocalAws]:
    """An in-memory AWS configured as docs/ARCHITECTURE.md section 5 says: real ASL execution, our handlers dispatched
    in-process, Wait states and retry back-offs fast-forwarded, moto's known gaps filled. Restores everything
    (environment, patches) on exit."""
    from moto import mock_aws

    from responder.aws import clients

    handle = LocalAws(region=region)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }
    with ExitStack() as stack:
        stack.enter_context(mock.patch.dict(os.environ, env))
        for var in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
            os.environ.pop(var, None)
        clients.reset()
        stack.callback(clients.reset)
        stack.enter_context(mock_aws(config=MOTO_CONFIG))
        _install_runtime(stack, handle)
        from state_machines import gaps

        gaps.install(stack)
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=r"Exception\(STSClientError\)", category=UserWarning)
        for name in ("moto.stepfunctions", "moto.stepfunctions.parser"):
            lg = logging.getLogger(name)
            stack.callback(lg.setLevel, lg.level)
            lg.setLevel(logging.CRITICAL)
        yield handle


def _install_runtime(stack: ExitStack, handle: LocalAws) -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    def wait_interval(self, env, wait_seconds):  # noqa: ARG001 - moto's signature
        handle.waited_seconds.append(float(wait_seconds))

    fast_time = types.SimpleNamespace(sleep=lambda seconds: None, time=time.time, monotonic=time.monotonic)
    stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", _invoke))
    stack.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
    stack.enter_context(mock.patch.object(retrier_decl, "time", fast_time))
    _lean_managed_policies(stack)
    _record_handler_calls(stack)


_CALLS: list[dict[str, str]] = []  # AWS calls made by handlers, in order (see Execution.aws_calls)
_handler = threading.local()  # .function: the Lambda function whose handler runs on this thread, if any


def _running_function() -> str | None:
    return getattr(_handler, "function", None)


def _record_handler_calls(stack: ExitStack) -> None:
    """Count every AWS API call a handler makes (not the calls moto's Step Functions engine makes)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def make_api_call(self, operation_name, api_params):
        function = _running_function()
        api = f"{self.meta.service_model.signing_name}:{operation_name}"
        if function:
            _CALLS.append({"function": function, "api": api})
        try:
            return original(self, operation_name, api_params)
        finally:
            if function and _JUMPS and _JUMPS[0][0] == api:
                _advance(_JUMPS.pop(0)[1])

    stack.enter_context(mock.patch.object(BaseClient, "_make_api_call", make_api_call))


_JUMPS: list[tuple[str, float]] = []  # (api, seconds): move the clock ahead right after a handler's call to api


def _advance(seconds: float) -> None:
    from state_machines import gaps_sts

    gaps_sts.advance(seconds)


@contextmanager
def time_passes(seconds: float, *, after: str | None = None) -> Iterator[None]:
    """Test switch: move the clock of the in-memory AWS and of the responder's credential refresh `seconds` ahead,
    at once or right after the first call a handler makes to `after` (e.g. ``"ebs:ListSnapshotBlocks"``: in the
    middle of an invocation). Session credentials issued before then expire as they would after that long (see
    state_machines/gaps_sts.py). Production code is unchanged: only the clock it reads is patched. Must run
    inside `aws()`; the clock moves back on exit."""
    from responder.aws import clients
    from state_machines import gaps_sts

    with mock.patch.object(clients, "_now", gaps_sts.now):
        if after is None:
            _advance(seconds)
        else:
            _JUMPS.append((after, seconds))
        try:
            yield
        finally:
            moved = not _JUMPS
            _JUMPS.clear()
            if moved:
                _advance(-seconds)


_MANAGED_POLICY_DATA: list[dict] = []


def _lean_managed_policies(stack: ExitStack) -> None:
    """moto builds all ~1,300 AWS managed policies for every IAM backend it creates (one per account and
    partition): 80 ms each, seconds per deployment. Parse the data once, and build the policies only for the
    standard `aws` partition, which is the one the local runtime serves."""
    from moto.iam import models as iam_models

    def init_aws_policies(self):
        if not iam_models.load_iam_aws_managed_policies() or self.region_name != "aws":
            return []
        if not _MANAGED_POLICY_DATA:
            _MANAGED_POLICY_DATA.append(json.loads(iam_models.aws_managed_policies_data))
        return [iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, d)
                for name, d in _MANAGED_POLICY_DATA[0].items()]

    stack.enter_context(mock.patch.object(iam_models.IAMBackend, "_init_aws_policies", init_aws_policies))


class _Context:
    """The Lambda context object handlers receive."""

    def __init__(self, fn: Any):
        self.function_name = fn.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = fn.function_arn
        self.memory_limit_in_mb = int(getattr(fn, "memory_size", 256) or 256)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{fn.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.time() + float(getattr(fn, "timeout", 60) or 60)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _invoke(self, function_name, qualifier, body, headers, response_headers):  # noqa: ARG001 - moto's signature
    """LambdaSimpleBackend.invoke: run the handler named by the function's Handler setting, in-process, with the
    function's environment; on an exception report it the way Lambda does, so Retry/Catch see the class name."""
    fn = self.get_function(function_name, qualifier)
    module_name, attr = fn.handler.rsplit(".", 1)
    env = {str(k): str(v) for k, v in (fn.environment_vars or {}).items()}
    env.update(AWS_LAMBDA_FUNCTION_NAME=fn.function_name, AWS_REGION=fn.region, AWS_DEFAULT_REGION=fn.region)
    event = json.loads(body) if body else {}
    with _invoke_lock:
        # Overwrite, never remove: other threads (the caller polling, moto) iterate os.environ meanwhile, and a key
        # removed mid-iteration raises KeyError there. Every function has the same variable names, and aws()
        # restores the whole environment on exit.
        regions = {k: os.environ[k] for k in ("AWS_REGION", "AWS_DEFAULT_REGION") if k in os.environ}
        os.environ.update(env)
        from responder.settings import ENV, FUNCTION_ENV, settings

        # what the handler's configuration sees: exactly this function's variables (a name it lacks is absent)
        own = {k: v for k, v in os.environ.items() if k not in ENV or k in env}
        token = FUNCTION_ENV.set(own)

        settings.cache_clear()  # configuration is read per function "container"
        outer, _handler.function = _running_function(), fn.function_name
        try:
            handler = getattr(importlib.import_module(module_name), attr)
            result = handler(event, _Context(fn))
            return json.dumps(result).encode()
        except Exception as exc:  # reported exactly like Lambda: errorType is the class name
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc)[-6:],
                }
            ).encode()
        finally:
            _handler.function = outer
            os.environ.update(regions)  # the caller's default region again (a value change, not a removal)
            FUNCTION_ENV.reset(token)
            settings.cache_clear()


# --------------------------------------------------------------------------------------------------------
# Sessions in any account of the in-memory AWS
# --------------------------------------------------------------------------------------------------------
_LOADER: list[Any] = []


def session(account: str | None = None, region: str | None = None):
    """A boto3 Session acting in `account` (default: the security account) of the in-memory AWS, with
    administrator rights: use it to build the world a scenario needs and to read back the result."""
    import boto3
    import botocore.session

    region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    core = botocore.session.get_session()
    if not _LOADER:
        _LOADER.append(core.get_component("data_loader"))
    core.register_component("data_loader", _LOADER[0])  # parse each service model once per process
    if account and account != DEFAULT_ACCOUNT:
        creds = boto3.client("sts", region_name=region).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{LOCAL_ADMIN_ROLE}", RoleSessionName="local-admin"
        )["Credentials"]
        core.set_credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    return boto3.session.Session(botocore_session=core, region_name=region)


# --------------------------------------------------------------------------------------------------------
# Deployment: what the CDK stacks create
# --------------------------------------------------------------------------------------------------------
@dataclass
class Deployment:
    region: str
    security_account: str
    member_accounts: tuple[str, ...]
    forensics_account: str
    state_machine_arn: str
    functions: dict[str, str]
    environment: dict[str, str]
    table_name: str
    topic_arn: str
    bucket: str
    forensics_key_arn: str
    sharing_keys: dict[str, str]
    regions: tuple[str, ...] = ()  # every region of the estate, `region` first (() = `region` alone)
    forensics_region: str = ""  # "" = `region`
    regional_sharing_keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (account, region) -> key ARN

    @property
    def member_account(self) -> str:
        return self.member_accounts[0]

    def session(self, account: str | None = None, region: str | None = None):
        """Administrator session in `account` (default: the first member account), in `region` (default: the
        responder's)."""
        return session(account or self.member_account, region or self.region)

    def client(self, service: str, account: str | None = None, region: str | None = None):
        """Administrator client in `account` (default: the first member account), in `region` (default: the
        responder's)."""
        return self.session(account, region).client(service, region_name=region or self.region)


def deploy(
    *,
    member_account: str | list[str] | tuple[str, ...] | None = None,
    forensics_account: str | None = None,
    region: str | None = None,
    protected_principals: tuple[str, ...] | list[str] = (),
    observe_only: bool = False,
    isolation_cidrs: tuple[str, ...] | list[str] = (),
    key_scope: str = "all",
    network_acl_isolation: bool = True,
    remove_console_access: bool = True,
    snapshot_retention: int = 7,
    evidence_min_interval_minutes: int = 60,
    quarantine_policy_arn: str | None = None,
    external_id: str = "ir-responder",
    log_level: str = "WARNING",
    containment_levels: dict | str | None = None,
    athena_database: str | None = None,
    athena_table: str | None = None,
    athena_workgroup: str | None = None,
    athena_date_partition: str = "",
    cloudtrail_lake: bool = False,
    regions: tuple[str, ...] | list[str] = (),
    forensics_region: str | None = None,
) -> Deployment:
    """Create in the in-memory AWS what `cdk deploy` creates: the responder stack in the security account (moto's
    default account), the member stack in each member account, the forensics stack in the forensics account.
    Accounts default to the security account (single-account layout). Must run inside `aws()`.

    `athena_database`, `athena_table`, `athena_workgroup` (all three, like the context keys athenaDatabase,
    athenaTable, athenaWorkgroup) name the organization trail's Athena table: the deployment then has it (Glue
    database and table, workgroup with its output location, the runbook's named queries) and the scope capture runs
    there; the in-memory engine answers from every account's recorded CloudTrail events
    (state_machines/gaps_athena.py). `athena_date_partition` names its yyyy/MM/dd partition column.
    `cloudtrail_lake=True` (instead of a table) gives it an organization CloudTrail Lake event data store
    (context key cloudTrailLakeEventDataStore; state_machines/gaps_lake.py).

    `containment_levels`: the containment-level policy (README "Containment levels and approval"; validated like
    the CDK context, except that approval deadlines of a second are allowed here).

    `regions` (context key regions: every region of the estate, `region` among them) and `forensics_region`
    (forensicsRegion): the member accounts get their regional resources (the sharing key) in every other region,
    the forensics stack goes to `forensics_region` (README "Every region"). A finding of another region is then
    delivered to the responder as the findings forwarder of that region does in AWS: unchanged."""
    from responder.levels import parse
    from state_machines import local_stacks

    levels = parse(containment_levels) if containment_levels not in (None, "", {}) else None

    region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    members = (member_account,) if isinstance(member_account, str) else tuple(member_account or ())
    members = members or (DEFAULT_ACCOUNT,)
    forensics = forensics_account or DEFAULT_ACCOUNT
    estate = tuple(dict.fromkeys((region, *regions)))
    if regions and region not in regions:
        raise ValueError(f"regions: must include the responder's region {region}")
    evidence_region = forensics_region or region
    for account in (*members, forensics):
        if not (isinstance(account, str) and len(account) == 12 and account.isdigit()):
            raise ValueError(f"account ids must be 12 digits, got {account!r}")

    forensics_out = local_stacks.forensics_stack(session(forensics, evidence_region), region=evidence_region,
                                                 security_account=DEFAULT_ACCOUNT, member_accounts=members,
                                                 external_id=external_id, key_regions=estate)
    sharing, regional = {}, {}
    for account in members:
        sharing[account] = local_stacks.member_stack(
            session(account, region), region=region, security_account=DEFAULT_ACCOUNT,
            forensics_account=forensics, external_id=external_id,
            quarantine_policy_arn=quarantine_policy_arn or local_stacks.DEFAULT_QUARANTINE_POLICY,
            forensics_region=evidence_region,
        )["sharing_key_arn"]
        regional[(account, region)] = sharing[account]
        for other in estate[1:]:
            regional[(account, other)] = local_stacks.member_region_stack(
                session(account, other), region=other, forensics_account=forensics, forensics_region=evidence_region)
    trail_keys = (athena_database, athena_table, athena_workgroup)
    if any(trail_keys) and not all(trail_keys):
        missing = [n for n, v in zip(("athena_database", "athena_table", "athena_workgroup"), trail_keys) if not v]
        raise ValueError(f"{missing[0]}: required with the other athena_* parameters (the trail table needs all three)")
    trail = None
    lake_arn = ""
    if cloudtrail_lake:
        if any(trail_keys):
            raise ValueError("cloudtrail_lake: either the athena_* table or the CloudTrail Lake event data store")
        from state_machines import gaps_lake

        lake_arn = f"arn:aws:cloudtrail:{region}:{DEFAULT_ACCOUNT}:eventdatastore/{uuid.uuid4()}"
        gaps_lake.register(lake_arn)
        from stacks.policies import TrailLake

        trail = TrailLake(event_data_store_arn=lake_arn)
    if all(trail_keys):
        from responder.trail_query import IDENTIFIER, WORKGROUP

        for name, value, pattern in (("athena_database", athena_database, IDENTIFIER),
                                     ("athena_table", athena_table, IDENTIFIER),
                                     ("athena_workgroup", athena_workgroup, WORKGROUP),
                                     ("athena_date_partition", athena_date_partition or "x", IDENTIFIER)):
            if not pattern.match(value):
                raise ValueError(f"{name}: not an Athena name: {value!r}")
        trail = local_stacks.trail_stack(session(None, region), region=region, database=athena_database,
                                         table=athena_table, workgroup=athena_workgroup,
                                         date_partition=athena_date_partition)
    responder = local_stacks.responder_stack(session(None, region), region=region, member_accounts=members,
                                             forensics_account=forensics, trail=trail)
    env = {
        "POWERTOOLS_SERVICE_NAME": "ir-responder",
        "POWERTOOLS_LOG_LEVEL": log_level,
        "IR_MEMBER_ROLE_NAME": local_stacks.MEMBER_ROLE_NAME,
        "IR_EXTERNAL_ID": external_id,
        "IR_FORENSICS_ACCOUNT": forensics,
        "IR_FORENSICS_ROLE_ARN": forensics_out["role_arn"],
        "IR_FORENSICS_KEY_ARN": forensics_out["key_arn"],
        "IR_SHARING_KEY_ALIAS": local_stacks.SHARING_KEY_ALIAS,
        "IR_DENY_ALL_PROFILE": local_stacks.DENY_ALL_PROFILE,
        "IR_EVIDENCE_BUCKET": forensics_out["bucket"],
        "IR_INCIDENT_TABLE": responder["table_name"],
        "IR_TOPIC_ARN": responder["topic_arn"],
        "IR_QUARANTINE_POLICY_ARN": quarantine_policy_arn or local_stacks.DEFAULT_QUARANTINE_POLICY,
        "IR_PROTECTED_PRINCIPALS": ",".join(protected_principals),
        "IR_PROTECTED_TAG": local_stacks.PROTECTED_TAG,
        "IR_OBSERVE_ONLY": "true" if observe_only else "false",
        "IR_ISOLATION_CIDRS": ",".join(isolation_cidrs),
        "IR_SNAPSHOT_RETENTION": str(int(snapshot_retention)),
        "IR_EVIDENCE_MIN_INTERVAL_MINUTES": str(int(evidence_min_interval_minutes)),
        "IR_KEY_SCOPE": key_scope,
        "IR_NETWORK_ACL_ISOLATION": "true" if network_acl_isolation else "false",
        "IR_EVIDENCE_LOCK_MODE": local_stacks.EVIDENCE_LOCK_MODE.lower(),
        "IR_EVIDENCE_LOCK_DAYS": str(local_stacks.EVIDENCE_RETENTION_DAYS),
        "IR_CUSTODY_KEY_ARN": forensics_out["custody_key_arn"],
        "IR_CUSTODY_SIGNER_ROLE_ARN": forensics_out["signer_role_arn"],
        "IR_REGIONS": ",".join(estate),
        "IR_FORENSICS_REGION": evidence_region,
        "IR_RESPONDER_ROLE_ARNS": ",".join(names.responder_role_arns(local_stacks.PARTITION, DEFAULT_ACCOUNT)),
        "IR_REMOVE_CONSOLE_ACCESS": "true" if remove_console_access else "false",
        "IR_CONTAINMENT_LEVELS": json.dumps(levels, separators=(",", ":")) if levels else "",
        "IR_TRAIL_DATABASE": athena_database or "",
        "IR_TRAIL_TABLE": athena_table or "",
        "IR_TRAIL_WORKGROUP": athena_workgroup or "",
        "IR_TRAIL_DATE_PARTITION": athena_date_partition if all(trail_keys) else "",
        "IR_TRAIL_EVENT_DATA_STORE": lake_arn,
    }
    # every name a handler invocation sets exists before any execution starts: an invocation then only changes
    # values, never the size of os.environ while other threads iterate it (aws() restores it all on exit)
    for name in (*env, "AWS_LAMBDA_FUNCTION_NAME"):
        os.environ.setdefault(name, "")
    functions, sm_arn = local_stacks.functions_and_state_machine(
        session(None, region), region=region, environment=env, role_arn=responder["function_role_arn"],
        state_machine_role_arn=responder["state_machine_role_arn"],
    )
    return Deployment(
        region=region, security_account=DEFAULT_ACCOUNT, member_accounts=members, forensics_account=forensics,
        state_machine_arn=sm_arn, functions=functions, environment=env, table_name=responder["table_name"],
        topic_arn=responder["topic_arn"], bucket=forensics_out["bucket"], forensics_key_arn=forensics_out["key_arn"],
        sharing_keys=sharing, regions=estate, forensics_region=evidence_region, regional_sharing_keys=regional,
    )


# --------------------------------------------------------------------------------------------------------
# Executions
# --------------------------------------------------------------------------------------------------------
@dataclass
class Execution:
    arn: str
    name: str
    status: str  # SUCCEEDED / FAILED / TIMED_OUT / ABORTED
    output: dict | None
    error: str | None
    cause: str | None
    states: list[str]
    events: list[dict] = field(repr=False, default_factory=list)
    aws_calls: list[dict] = field(repr=False, default_factory=list)

    @property
    def api_calls(self) -> dict[str, int]:
        """AWS API calls the handlers made during this execution, by `service:Operation` (exact when executions
        run one at a time; concurrent executions share the count)."""
        counts: dict[str, int] = {}
        for call in self.aws_calls:
            counts[call["api"]] = counts.get(call["api"], 0) + 1
        return counts

    @property
    def transitions(self) -> int:
        """State transitions (what Step Functions bills): one per state entered."""
        return len(self.states)

    @property
    def payload_sizes(self) -> list[tuple[str, str, int]]:
        """(state, what, UTF-8 bytes) of every state input, output, task input and task result in the history.
        Step Functions fails an execution whose state data exceed 256 KiB (``States.DataLimitExceeded``, which no
        Catch can handle). The execution's own input is listed as state ``$input``."""
        by_id = {e.get("id"): e for e in self.events}

        def state_of(event: dict) -> str:
            seen = 0
            while event is not None and seen < 10_000:
                for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
                    if key in event:
                        return event[key].get("name", "?")
                event, seen = by_id.get(event.get("previousEventId")), seen + 1
            return "?"

        found = []
        for event in self.events:
            for key, details in event.items():
                if not (key.endswith("EventDetails") and isinstance(details, dict)):
                    continue
                for what in ("input", "output", "parameters"):
                    value = details.get(what)
                    if isinstance(value, str):
                        state = "$input" if event.get("type") == "ExecutionStarted" else state_of(event)
                        found.append((state, f"{event.get('type')}.{what}", len(value.encode())))
        return found

    @property
    def largest_payload(self) -> int:
        """The largest state data of this execution after Triage (bytes): what the workflow carries from state to
        state. The execution input (at most 256 KiB, EventBridge's and StartExecution's limit) and Triage's own
        input are left out: Triage keeps only the normalized incident."""
        return max([size for state, _, size in self.payload_sizes if state not in ("$input", "Triage")] or [0])


def _input_text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    if isinstance(value, str):
        try:
            json.loads(value)
            return value  # already JSON text
        except ValueError:
            pass
    return json.dumps(value)


def execute(input: Any, deployment: Deployment, *, name: str | None = None, timeout: float = 300.0) -> Execution:
    """Start the shipped state machine with `input` and wait for its end. `input` is a dict (or JSON text)."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name=deployment.region)
    name = name or f"local-{uuid.uuid4().hex[:16]}"
    first_call = len(_CALLS)
    arn = sfn.start_execution(stateMachineArn=deployment.state_machine_arn, name=name,
                              input=_input_text(input))["executionArn"]
    run = wait(arn, deployment, timeout=timeout)
    run.aws_calls = list(_CALLS[first_call:])  # exact when executions run one at a time
    return run


def wait(execution_arn: str, deployment: Deployment, *, timeout: float = 300.0) -> Execution:
    """Wait for a started execution to end and read it back."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name=deployment.region)
    deadline, delay = time.time() + timeout, 0.002
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            break
        if time.time() > deadline:
            raise TimeoutError(f"execution {execution_arn} still running after {timeout} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    events: list[dict] = []
    token = None
    while True:
        kwargs = {"executionArn": execution_arn, "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            break
    states = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    output = described.get("output")
    return Execution(
        arn=execution_arn, name=described["name"], status=described["status"],
        output=json.loads(output) if output else None, error=described.get("error"), cause=described.get("cause"),
        states=states, events=events,
    )


def start(input: Any, deployment: Deployment, *, name: str | None = None) -> str:
    """Start the shipped state machine with `input` and return the execution ARN at once (see `wait`): for an
    execution that waits for an approval (`approve`, `deny`)."""
    import boto3

    sfn = boto3.client("stepfunctions", region_name=deployment.region)
    return sfn.start_execution(stateMachineArn=deployment.state_machine_arn, name=name or f"local-{uuid.uuid4().hex[:16]}",
                               input=_input_text(input))["executionArn"]


def pending_approval(incident_id: str, deployment: Deployment, *, timeout: float = 60.0) -> dict:
    """Wait until the incident's record holds a pending approval request (the execution reached AwaitApproval) and
    return it (``taskToken``, ``deadline``, ``onTimeout``...)."""
    from responder.aws.dynamodb import IncidentTable

    table = IncidentTable(session(None, deployment.region).client("dynamodb"), deployment.table_name)
    deadline = time.time() + timeout
    while True:
        approval = (table.get(incident_id) or {}).get("approval") or {}
        if approval.get("status") == "pending" and approval.get("taskToken"):
            return approval
        if time.time() > deadline:
            raise TimeoutError(f"no pending approval for {incident_id} after {timeout} s")
        time.sleep(0.02)


def approve(incident_id: str, deployment: Deployment, *, reason: str, by: str | None = None,
            account: str | None = None) -> dict:
    """Approve the incident's pending containment, exactly as ``python -m cli approve`` does: read the token from the
    incident record, refuse a decided or expired request (`responder.approval.ApprovalRefused`), SendTaskSuccess,
    mark the record. `by`: the approver's ARN (default: the caller identity of `account`'s administrator session,
    default the security account). Returns the decision sent."""
    return _answer("approve", incident_id, deployment, reason=reason, by=by, account=account)


def deny(incident_id: str, deployment: Deployment, *, reason: str, by: str | None = None,
         account: str | None = None) -> dict:
    """Deny the incident's pending containment (see `approve`): the execution stands down, nothing is contained."""
    return _answer("deny", incident_id, deployment, reason=reason, by=by, account=account)


def _answer(decision: str, incident_id: str, deployment: Deployment, *, reason: str, by: str | None,
            account: str | None) -> dict:
    from responder import approval
    from responder.aws.dynamodb import IncidentTable

    operator = session(account, deployment.region)
    table = IncidentTable(session(None, deployment.region).client("dynamodb"), deployment.table_name)
    caller = by or operator.client("sts").get_caller_identity()["Arn"]
    return approval.answer(table=table, sfn=operator.client("stepfunctions"), caller_arn=caller,
                           incident_id=incident_id, decision=decision, reason=reason)


def matches_rule(event: dict) -> bool:
    """Does `event` match one of the responder's EventBridge rule patterns (the ones the CDK stack deploys: GuardDuty
    findings, and the exposed-key signals of Trusted Advisor and AWS Health, `stacks.catalog.SIGNAL_PATTERNS`)?"""
    from moto.events.models import EventPattern

    return any(EventPattern.load(json.dumps(p)).matches_event(event)
               for p in (EVENT_PATTERN, *SIGNAL_PATTERNS.values()))


def deliver(event: dict, deployment: Deployment, *, name: str | None = None) -> Execution | None:
    """What EventBridge does with `event`: start the state machine if a rule's pattern matches, else None. A Trusted
    Advisor or AWS Health event published in us-east-1 reaches the responder's bus through the member account's
    forwarding rule in AWS (stacks.signal_forwarder_stack); here it is delivered directly, unchanged."""
    if not matches_rule(event):
        return None
    return execute(event, deployment, name=name)
