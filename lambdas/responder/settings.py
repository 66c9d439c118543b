"""Typed configuration, read once per cold start from the function's environment.

The environment variable names below are the contract between the CDK stacks (which set them), the local
executor (which sets the same ones) and the code (which reads them only here). `ENV` lists every name; a test
checks the synthesized template against `state_machines.local`.
"""
from __future__ import annotations

import os
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Mapping

# name -> meaning. Every Lambda function gets all of them (one shared configuration).
ENV: dict[str, str] = {
    "POWERTOOLS_SERVICE_NAME": "service name in the JSON logs",
    "POWERTOOLS_LOG_LEVEL": "log level",
    "IR_MEMBER_ROLE_NAME": "name of the role the member stack creates in every workload account",
    "IR_EXTERNAL_ID": "sts:ExternalId the member role's trust policy requires (confused-deputy protection)",
    "IR_FORENSICS_ACCOUNT": "12-digit id of the forensics account",
    "IR_FORENSICS_ROLE_ARN": "role the responder assumes in the forensics account",
    "IR_FORENSICS_KEY_ARN": "the forensics account's KMS key: every forensics copy is encrypted under it",
    "IR_SHARING_KEY_ALIAS": "alias of the member account's evidence-sharing KMS key",
    "IR_DENY_ALL_PROFILE": "name of the member account's deny-all instance profile",
    "IR_EVIDENCE_BUCKET": "forensics evidence bucket (manifests, captured metadata, CloudTrail activity)",
    "IR_INCIDENT_TABLE": "DynamoDB table of incident records (responder account)",
    "IR_TOPIC_ARN": "SNS topic for incident notifications",
    "IR_QUARANTINE_POLICY_ARN": "managed policy attached to a compromised IAM user",
    "IR_PROTECTED_PRINCIPALS": "comma-separated ARN patterns (fnmatch) never to contain (break-glass)",
    "IR_PROTECTED_TAG": "tag key that marks a principal or instance as protected when its value is 'true'",
    "IR_OBSERVE_ONLY": "'true': every execution runs as a dry run (plan only, nothing changes)",
    "IR_ISOLATION_CIDRS": "comma-separated CIDRs (responder bastion / forensics) the quarantine group allows",
    "IR_SNAPSHOT_RETENTION": "evidence snapshots kept per instance and per account side",
    "IR_EVIDENCE_MIN_INTERVAL_MINUTES": "findings on an already isolated instance collect again only after this",
    "IR_KEY_SCOPE": "'all' (runbook: deactivate every active key of the user) or 'named' (only the finding's key)",
    "IR_NETWORK_ACL_ISOLATION": "'false': no network ACL deny entries or connection-tracking timeouts at isolation",
    "IR_EVIDENCE_LOCK_MODE": "EBS Snapshot Lock mode of every forensics copy: compliance or governance ('' = none)",
    "IR_EVIDENCE_LOCK_DAYS": "EBS Snapshot Lock duration of every forensics copy, in days",
    "IR_CUSTODY_KEY_ARN": "the forensics account's asymmetric KMS key that signs every evidence manifest",
    "IR_CUSTODY_SIGNER_ROLE_ARN": "the forensics account's role that alone may sign with the custody key (Finalize)",
    "IR_REGIONS": "comma-separated regions this deployment covers: a request or finding for another is refused",
    "IR_FORENSICS_REGION": "the forensics account's region: evidence bucket, custody key, every forensics snapshot copy "
                           "(a snapshot of another region is copied there); '' = the function's own region",
    "IR_RESPONDER_ROLE_ARNS": "comma-separated exact ARNs of the responder's own roles in the security account",
    "IR_REMOVE_CONSOLE_ACCESS": "'true' (default): a quarantined user's console password is removed "
                                "(DeleteLoginProfile, its creation date recorded)",
    "IR_CONTAINMENT_LEVELS": "containment-level policy as JSON (responder.levels): automatic, approval or observe per "
                             "account group, finding type and severity ('' = every incident automatic)",
    "IR_TRAIL_DATABASE": "Glue database of the organization trail's Athena table ('' = no trail table: event history)",
    "IR_TRAIL_TABLE": "the organization trail's Athena table (CloudTrail's schema)",
    "IR_TRAIL_WORKGROUP": "Athena workgroup the scope queries run in (its output location receives the results)",
    "IR_TRAIL_DATE_PARTITION": "the trail table's yyyy/MM/dd date partition column, if it has one",
    "IR_TRAIL_EVENT_DATA_STORE": "ARN of the organization's CloudTrail Lake event data store (instead of a table)",
}

SERVICE_NAME = "ir-responder"
MEMBER_ROLE_NAME = "ir-responder-member"
FORENSICS_ROLE_NAME = "ir-responder-forensics"
SIGNER_ROLE_NAME = "ir-responder-custody-signer"
SHARING_KEY_ALIAS = "alias/ir-evidence-sharing"
DENY_ALL_PROFILE = "ir-quarantine-deny-all"
DENY_ALL_ROLE_NAME = "ir-responder-quarantine-deny-all"
DEFAULT_QUARANTINE_POLICY = "arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantineV2"
PROTECTED_TAG = "ir:protected"
REVOKE_POLICY_NAME = "AWSRevokeOlderSessions"
# Where a release stores a restored console password (responder.release, restoreConsoleAccess): a secret of the
# responder's own account named <prefix><incident>/<account>/<user>; the Release function may write only there.
RELEASE_SECRET_PREFIX = "ir-responder/release/"
DENY_ALL_POLICY_NAME = "ir-quarantine-deny-all"  # inline, when the quarantine managed policy cannot be attached


def _csv(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.split(",") if p.strip())


@dataclass(frozen=True)
class Settings:
    member_role_name: str = MEMBER_ROLE_NAME
    external_id: str = ""
    forensics_account: str = ""
    forensics_role_arn: str = ""
    forensics_key_arn: str = ""
    sharing_key_alias: str = SHARING_KEY_ALIAS
    deny_all_profile: str = DENY_ALL_PROFILE
    evidence_bucket: str = ""
    incident_table: str = ""
    topic_arn: str = ""
    quarantine_policy_arn: str = DEFAULT_QUARANTINE_POLICY
    protected_principals: tuple[str, ...] = field(default_factory=tuple)
    protected_tag: str = PROTECTED_TAG
    observe_only: bool = False
    isolation_cidrs: tuple[str, ...] = field(default_factory=tuple)
    snapshot_retention: int = 7
    evidence_min_interval_minutes: int = 60
    key_scope: str = "all"
    network_acl_isolation: bool = True
    evidence_lock_mode: str = ""  # '' = forensics copies are not locked (a deployment always sets it)
    evidence_lock_days: int = 365
    custody_key_arn: str = ""
    custody_signer_role_arn: str = ""
    regions: tuple[str, ...] = field(default_factory=tuple)  # empty: no region check (unit tests)
    forensics_region: str = ""  # '' = the function's own region
    responder_role_arns: tuple[str, ...] = field(default_factory=tuple)
    remove_console_access: bool = True
    containment_levels: dict = field(default_factory=dict, hash=False, compare=False)  # parsed (responder.levels.parse); {} = not read
    containment_levels_error: str = ""  # why the policy is unusable: every incident then needs approval
    trail_database: str = ""  # all three set: scope captures run on the organization trail (responder/scope.py)
    trail_table: str = ""
    trail_workgroup: str = ""
    trail_date_partition: str = ""
    trail_event_data_store: str = ""
    # Why protection cannot be decided for this deployment ("" when it can): fail closed, contain nothing.
    protection_config_error: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        retention = env.get("IR_SNAPSHOT_RETENTION", "7") or "7"
        key_scope = env.get("IR_KEY_SCOPE", "all") or "all"
        if key_scope not in ("all", "named"):
            raise ValueError(f"IR_KEY_SCOPE must be 'all' or 'named', not {key_scope!r}")
        console = (env.get("IR_REMOVE_CONSOLE_ACCESS") or "true").lower()
        if console not in ("true", "false"):
            raise ValueError(f"IR_REMOVE_CONSOLE_ACCESS must be 'true' or 'false', not {console!r}")
        return cls(
            member_role_name=env.get("IR_MEMBER_ROLE_NAME") or MEMBER_ROLE_NAME,
            external_id=env.get("IR_EXTERNAL_ID", ""),
            forensics_account=env.get("IR_FORENSICS_ACCOUNT", ""),
            forensics_role_arn=env.get("IR_FORENSICS_ROLE_ARN", ""),
            forensics_key_arn=env.get("IR_FORENSICS_KEY_ARN", ""),
            sharing_key_alias=env.get("IR_SHARING_KEY_ALIAS") or SHARING_KEY_ALIAS,
            deny_all_profile=env.get("IR_DENY_ALL_PROFILE") or DENY_ALL_PROFILE,
            evidence_bucket=env.get("IR_EVIDENCE_BUCKET", ""),
            incident_table=env.get("IR_INCIDENT_TABLE", ""),
            topic_arn=env.get("IR_TOPIC_ARN", ""),
            quarantine_policy_arn=env.get("IR_QUARANTINE_POLICY_ARN") or DEFAULT_QUARANTINE_POLICY,
            protected_principals=_csv(env.get("IR_PROTECTED_PRINCIPALS", "")),
            protected_tag=env.get("IR_PROTECTED_TAG") or PROTECTED_TAG,
            observe_only=env.get("IR_OBSERVE_ONLY", "false").lower() == "true",
            isolation_cidrs=_csv(env.get("IR_ISOLATION_CIDRS", "")),
            snapshot_retention=int(retention),
            evidence_min_interval_minutes=int(env.get("IR_EVIDENCE_MIN_INTERVAL_MINUTES", "60") or "60"),
            key_scope=key_scope,
            network_acl_isolation=env.get("IR_NETWORK_ACL_ISOLATION", "true").lower() != "false",
            evidence_lock_mode=(env.get("IR_EVIDENCE_LOCK_MODE") or "").lower(),
            evidence_lock_days=int(env.get("IR_EVIDENCE_LOCK_DAYS") or 365),
            custody_key_arn=env.get("IR_CUSTODY_KEY_ARN", ""),
            custody_signer_role_arn=env.get("IR_CUSTODY_SIGNER_ROLE_ARN", ""),
            regions=_csv(env.get("IR_REGIONS", "")) or _csv(env.get("AWS_REGION", "")),
            forensics_region=env.get("IR_FORENSICS_REGION", "") or env.get("AWS_REGION", ""),
            responder_role_arns=_csv(env.get("IR_RESPONDER_ROLE_ARNS", "")),
            remove_console_access=console == "true",
            trail_database=env.get("IR_TRAIL_DATABASE", ""),
            trail_table=env.get("IR_TRAIL_TABLE", ""),
            trail_workgroup=env.get("IR_TRAIL_WORKGROUP", ""),
            trail_date_partition=env.get("IR_TRAIL_DATE_PARTITION", ""),
            trail_event_data_store=env.get("IR_TRAIL_EVENT_DATA_STORE", ""),
            protection_config_error=protection_config_error(env),
            **_containment_levels(env.get("IR_CONTAINMENT_LEVELS", "")),
        )


def protection_config_error(env: Mapping[str, str]) -> str:
    """Fail closed on missing or unusable protection configuration. The stacks always set
    IR_PROTECTED_PRINCIPALS (empty means "no break-glass list"); absent means the deployment is incomplete. A
    pattern that is not an ARN pattern would never match anything: refused rather than silently ignored."""
    if "IR_PROTECTED_PRINCIPALS" not in env:
        return "IR_PROTECTED_PRINCIPALS is not configured"
    bad = [p for p in _csv(env["IR_PROTECTED_PRINCIPALS"]) if not p.startswith("arn:")]
    if bad:
        return f"IR_PROTECTED_PRINCIPALS entry {bad[0][:80]!r} is not an ARN pattern (arn:...)"
    return ""


def _containment_levels(text: str) -> dict:
    """The parsed policy, or (fail closed) the reason it cannot be used: the incidents then wait for approval."""
    from responder.levels import LevelsError, parse

    try:
        return {"containment_levels": parse(text)}
    except LevelsError as exc:
        return {"containment_levels": {}, "containment_levels_error": f"IR_CONTAINMENT_LEVELS: {exc}"}


# In Lambda this stays unset and os.environ is the function's environment. The local runtime runs several
# functions' handlers in one process: it sets the invoked function's own variables here for the call.
FUNCTION_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("FUNCTION_ENV", default=None)


def environment() -> Mapping[str, str]:
    """The function's environment variables."""
    return FUNCTION_ENV.get() or os.environ


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The function's configuration, read once (cold start)."""
    return Settings.from_env(environment())
