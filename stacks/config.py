"""The deployment's configuration, read once from the CDK context (`cdk.json`, or `-c key=value` on the command line).

Dependency-free (no CDK import): the app reads it, the tests read it, and anyone can check a context by hand:

    python -c "from stacks.config import Config, load_context; print(Config.from_context(load_context()))"

Context keys (see README "Deploy"):

| key | meaning | default |
|---|---|---|
| `layout` | `multi-account` or `single-account` (all three stacks in `securityAccount`) | `multi-account` |
| `region` | the responder's region: the responder stack, the member stacks (IAM roles are global: deployed once, here) | required |
| `regions` | every region the estate uses (list, or comma-separated; must include `region`): findings of each reach the responder (a forwarding stack per extra region in `securityAccount`), each member account gets its regional resources there (README "Every region") | `region` only |
| `forensicsRegion` | where the forensics stack lives and every evidence snapshot is copied to (cross-region `CopySnapshot` from the other regions) | `region` |
| `securityAccount` | where the responder runs (GuardDuty delegated administrator) | required |
| `forensicsAccount` | where evidence is copied to | required (multi-account) |
| `memberAccounts` | workload accounts the responder may act in (list, or comma-separated) | required (multi-account) |
| `securityAccountIsMember` | `true` lets `memberAccounts` name the security account (the responder then acts in its own account) | `false` |
| `externalId` | `sts:ExternalId` the member and forensics roles require (confused-deputy protection, not a secret; the example value is refused) | required |
| `notificationEmail` | subscribed to the notifications topic (confirm the e-mail AWS sends) | none |
| `incidentTableName` | DynamoDB table of incident records | `ir-responder-incidents` |
| `forensicsKeyArn` | the forensics key's ARN (output `ForensicsKeyArn` of the forensics stack) | the alias ARN |
| `quarantinePolicyArn` | managed policy attached to a compromised IAM user: one of AWS's `AWSCompromisedKeyQuarantine*` policies, or a customer managed policy (README "Quarantine policy") | `AWSCompromisedKeyQuarantineV2` |
| `protectedPrincipals` | ARN patterns never contained (break-glass) | none |
| `protectedTag` | tag key marking a principal or instance as protected (`true`) | `ir:protected` |
| `observeOnly` | every execution is a dry run (plan only) | `false` |
| `isolationCidrs` | CIDRs (bastion / forensics) the quarantine group allows | none |
| `snapshotRetention` | evidence snapshots kept per instance and account side | `7` |
| `evidenceMinIntervalMinutes` | a finding on an instance another incident isolated collects evidence again only after this (`0`: always) | `60` |
| `keyScope` | `all` (deactivate every active key of the user) or `named` (only the finding's key) | `all` |
| `networkAclIsolation` | deny entries for an isolated instance's addresses in its VPC's network ACLs, minimum connection-tracking timeouts | `true` |
| `removeConsoleAccess` | a quarantined user's console password is removed (DeleteLoginProfile) | `true` |
| `containmentLevels` | per account group, finding type and severity band: `automatic`, `approval` or `observe`, the approval's deadline and default (README "Containment levels"; validated here, errors name the key) | every incident `automatic` |
| `logLevel` | functions' log level | `INFO` |
| `logRetentionDays` | retention of the functions' and the state machine's logs | `365` |
| `evidenceRetentionDays` | Object Lock default retention of the evidence bucket, and the EBS Snapshot Lock duration of every forensics copy | `365` |
| `evidenceLockMode` | `COMPLIANCE` (nobody, root included, can shorten or remove a lock) or `GOVERNANCE` (the custodian role can) | `COMPLIANCE` |
| `athenaDatabase` | Glue database of the organization trail's Athena table (security account and region); with `athenaTable`, `athenaWorkgroup`, `athenaOutputLocation`, `athenaTrailBucket` the scope capture runs on the trail (README "Scope on the organization trail") | none (event history) |
| `athenaTable` | the trail's table (CloudTrail's schema, lower-case name) | none |
| `athenaWorkgroup` | Athena workgroup of the scope queries; the named queries are saved in it | none |
| `athenaOutputLocation` | the workgroup's query result location, `s3://bucket/prefix/` (the functions may write there only) | none |
| `athenaTrailBucket` | the bucket (and prefix, `bucket/AWSLogs/o-xxxx/`) the table reads: read-only grant | none |
| `athenaDatePartition` | the table's `yyyy/MM/dd` date partition column (partition projection), if any | none |
| `cloudTrailLakeEventDataStore` | instead of the athena* keys: the ARN of the organization's CloudTrail Lake event data store (security account, `region`) the scope captures query | none |
| `organization` | service-managed StackSet of the member stack (stack `IrMemberStackSets`): `{"organizationId": "o-...", "organizationalUnitIds": ["ou-...", "r-..."], "managementAccount": "...", "delegatedAdministrator": "...", "excludeAccounts": [...], "retainStacksOnAccountRemoval": false}` (README "Deploy to a whole organization") | none |
| `evidenceCustodianRole` | the only role name in the forensics account that may delete evidence versions or bypass governance retention (the stacks do not create it) | `ir-evidence-custodian` |
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from stacks.catalog import ROOT

# Keep these in line with lambdas/responder/settings.py (the stacks may not import the Lambda package at module
# level: it is the Lambda asset, and its defaults live there).
DEFAULT_QUARANTINE_POLICY_NAME = "AWSCompromisedKeyQuarantineV2"
DEFAULT_TABLE_NAME = "ir-responder-incidents"

SINGLE_ACCOUNT = "single-account"
MULTI_ACCOUNT = "multi-account"
LAYOUTS = (MULTI_ACCOUNT, SINGLE_ACCOUNT)

# CloudWatch Logs accepts only these retention periods: days -> name of aws_logs.RetentionDays.
LOG_RETENTION_DAYS = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}
_ACCOUNT = re.compile(r"^\d{12}$")
_EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_TABLE = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
# The externalId cdk.json ships with: an example, refused so that every deployment sets its own.
EXAMPLE_EXTERNAL_ID = "ir-responder-example-change-me"
# AWS managed quarantine policies (DESIGN: V2 the seed's default, V3, V4); a customer managed policy is also accepted.
_AWS_QUARANTINE = re.compile(r"^arn:aws[\w-]*:iam::aws:policy/AWSCompromisedKeyQuarantine(V\d+)?$")
_CUSTOMER_POLICY = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):policy/([\w+=,.@/-]+)$")
# Athena / Glue names (in line with lambdas/responder/trail_query.py: IDENTIFIER, WORKGROUP).
_ATHENA_IDENTIFIER = re.compile(r"^[a-z0-9_]{1,255}$")
_ATHENA_WORKGROUP = re.compile(r"^[a-zA-Z0-9._-]{1,128}$")
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_S3_LOCATION = re.compile(rf"^s3://{_BUCKET}/([\w!.'()/-]*/)?$")
_TRAIL_BUCKET = re.compile(rf"^{_BUCKET}(/[\w!.'()/-]*)?$")
_EVENT_DATA_STORE = re.compile(r"^arn:aws[\w-]*:cloudtrail:[a-z]{2}(-[a-z]+)+-\d:\d{12}:eventdatastore/[A-Za-z0-9-]{1,128}$")
ATHENA_KEYS = ("athenaDatabase", "athenaTable", "athenaWorkgroup", "athenaOutputLocation", "athenaTrailBucket")
MAX_SNAPSHOT_LOCK_DAYS = 36500  # EBS Snapshot Lock: 1 day to 100 years
_ORG_ID = re.compile(r"^o-[a-z0-9]{10,32}$")
_OU_ID = re.compile(r"^(ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}|r-[a-z0-9]{4,32})$")
ORGANIZATION_KEYS = ("organizationId", "organizationalUnitIds", "managementAccount", "delegatedAdministrator",
                     "excludeAccounts", "retainStacksOnAccountRemoval", "maxConcurrentPercentage",
                     "failureTolerancePercentage")


@dataclass(frozen=True)
class Organization:
    """The `organization` context key: where the member StackSet deploys (stacks.member_stack_set)."""
    organization_id: str
    organizational_unit_ids: tuple[str, ...]
    management_account: str
    delegated_administrator: str = ""  # "" = the StackSet stack is deployed in the management account
    exclude_accounts: tuple[str, ...] = ()  # every account the StackSet must skip (DIFFERENCE filter)
    retain_stacks_on_account_removal: bool = False
    max_concurrent_percentage: int = 25
    failure_tolerance_percentage: int = 10

    @property
    def administrator_account(self) -> str:
        return self.delegated_administrator or self.management_account

    @property
    def resource_org_paths(self) -> tuple[str, ...]:
        """`aws:ResourceOrgPaths` patterns of the target OUs (and their child OUs, which the StackSet reaches too):
        `o-.../r-.../*` for the root, `o-.../*/ou-.../*` for an OU (an OU id is unique in its organization)."""
        return tuple(f"{self.organization_id}/{u}/*" if u.startswith("r-") else f"{self.organization_id}/*/{u}/*"
                     for u in self.organizational_unit_ids)

    @property
    def call_as(self) -> str:
        """CloudFormation's CallAs: SELF in the management account, DELEGATED_ADMIN in a delegated administrator."""
        return "DELEGATED_ADMIN" if self.delegated_administrator else "SELF"


class ConfigError(ValueError):
    """The CDK context is incomplete or invalid; the message names the context key."""


def load_context(path: Path | None = None) -> dict[str, Any]:
    """The `context` block of cdk.json (what the CDK CLI passes to the app)."""
    return dict(json.loads((path or ROOT / "cdk.json").read_text()).get("context", {}))


def _list(value: Any, key: str) -> tuple[str, ...]:
    """A list from the context: a JSON list (cdk.json) or comma-separated text (`-c key=a,b`)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ConfigError(f"context {key!r}: not a JSON list: {value!r}") from exc
        else:
            value = text.split(",")
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"context {key!r}: expected a list, got {value!r}")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ConfigError(f"context {key!r}: expected true or false, got {value!r}")


def _int(value: Any, key: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError as exc:
        raise ConfigError(f"context {key!r}: expected an integer, got {value!r}") from exc


def _account(value: Any, key: str) -> str:
    text = str(value or "").strip()
    if not _ACCOUNT.match(text):
        raise ConfigError(f"context {key!r}: expected a 12-digit AWS account id, got {value!r}")
    return text


@dataclass(frozen=True)
class Config:
    layout: str
    region: str
    security_account: str
    forensics_account: str
    member_accounts: tuple[str, ...]
    external_id: str
    regions: tuple[str, ...] = ()  # every region of the estate, `region` first ((): just `region`)
    forensics_region: str = ""  # "" = `region`
    notification_email: str = ""
    incident_table_name: str = DEFAULT_TABLE_NAME
    forensics_key_arn: str = ""
    quarantine_policy_arn: str = ""
    protected_principals: tuple[str, ...] = ()
    protected_tag: str = "ir:protected"
    observe_only: bool = False
    isolation_cidrs: tuple[str, ...] = ()
    snapshot_retention: int = 7
    evidence_min_interval_minutes: int = 60
    key_scope: str = "all"
    network_acl_isolation: bool = True
    remove_console_access: bool = True
    log_level: str = "INFO"
    log_retention_days: int = 365
    evidence_retention_days: int = 365
    evidence_lock_mode: str = "COMPLIANCE"
    evidence_custodian_role: str = "ir-evidence-custodian"
    security_account_is_member: bool = False
    containment_levels: str = ""  # the validated policy as compact JSON (responder.levels), "" = none
    athena_database: str = ""
    athena_table: str = ""
    athena_workgroup: str = ""
    athena_output_location: str = ""
    athena_trail_bucket: str = ""
    athena_date_partition: str = ""
    lake_event_data_store: str = ""
    organization: Organization | None = None

    @property
    def trail_table(self) -> bool:
        """The deployment names the organization trail's Athena table: scope captures run there."""
        return bool(self.athena_database)

    @property
    def estate_regions(self) -> tuple[str, ...]:
        """Every region the deployment covers, the responder's first."""
        return self.regions or (self.region,)

    @property
    def extra_regions(self) -> tuple[str, ...]:
        """The regions other than the responder's: a findings forwarder and the regional member resources each."""
        return tuple(r for r in self.estate_regions if r != self.region)

    @property
    def evidence_region(self) -> str:
        """The forensics account's region: the forensics stack, the evidence bucket, every forensics copy."""
        return self.forensics_region or self.region

    @property
    def single_account(self) -> bool:
        return self.layout == SINGLE_ACCOUNT

    @classmethod
    def from_context(cls, context: Mapping[str, Any] | Callable[[str], Any]) -> "Config":
        """Read and validate every key; a `ConfigError` names the first bad one."""
        get = context if callable(context) else context.get
        layout = str(get("layout") or MULTI_ACCOUNT).strip()
        if layout not in LAYOUTS:
            raise ConfigError(f"context 'layout': expected one of {', '.join(LAYOUTS)}, got {layout!r}")
        region = str(get("region") or "").strip()
        if not _REGION.match(region):
            raise ConfigError(f"context 'region': expected a region such as eu-west-1, got {region or None!r}")
        regions, forensics_region = _regions(get, region)
        security = _account(get("securityAccount"), "securityAccount")
        if layout == SINGLE_ACCOUNT:
            forensics, members = security, (security,)
        else:
            forensics = _account(get("forensicsAccount"), "forensicsAccount")
            members = tuple(dict.fromkeys(_account(a, "memberAccounts")
                                          for a in _list(get("memberAccounts"), "memberAccounts")))
            if not members:
                raise ConfigError("context 'memberAccounts': at least one member account is needed")
            if forensics in members:  # a member role there could delete and share the evidence
                raise ConfigError(f"context 'memberAccounts': the forensics account {forensics} can never be a "
                                  "member account (a member role there could act on the evidence)")
        security_is_member = _bool(get("securityAccountIsMember") or False, "securityAccountIsMember")
        if layout == MULTI_ACCOUNT and security in members and not security_is_member:
            raise ConfigError(f"context 'memberAccounts': names the security account {security}; set "
                              "securityAccountIsMember=true to let the responder act in its own account")
        external_id = str(get("externalId") or "").strip()
        if not _EXTERNAL_ID.match(external_id):
            raise ConfigError("context 'externalId': 2 to 1224 characters of letters, digits and +=,.@:/-_")
        if external_id == EXAMPLE_EXTERNAL_ID:
            raise ConfigError(f"context 'externalId': {EXAMPLE_EXTERNAL_ID!r} is the example from cdk.json; set "
                              "your own value (-c externalId=...)")
        table = str(get("incidentTableName") or DEFAULT_TABLE_NAME).strip()
        if not _TABLE.match(table):
            raise ConfigError(f"context 'incidentTableName': not a DynamoDB table name: {table!r}")
        key_scope = str(get("keyScope") or "all").strip()
        if key_scope not in ("all", "named"):
            raise ConfigError(f"context 'keyScope': expected 'all' or 'named', got {key_scope!r}")
        retention = _int(get("logRetentionDays") or 365, "logRetentionDays")
        if retention not in LOG_RETENTION_DAYS:
            raise ConfigError(f"context 'logRetentionDays': CloudWatch Logs accepts {sorted(LOG_RETENTION_DAYS)}")
        snapshots = _int(get("snapshotRetention") or 7, "snapshotRetention")
        if snapshots < 1:
            raise ConfigError("context 'snapshotRetention': keep at least one evidence snapshot")
        interval = _int(get("evidenceMinIntervalMinutes") if get("evidenceMinIntervalMinutes") is not None else 60,
                        "evidenceMinIntervalMinutes")
        if interval < 0:
            raise ConfigError("context 'evidenceMinIntervalMinutes': minutes, 0 or more")
        evidence_days = _int(get("evidenceRetentionDays") or 365, "evidenceRetentionDays")
        if not 1 <= evidence_days <= MAX_SNAPSHOT_LOCK_DAYS:
            raise ConfigError(f"context 'evidenceRetentionDays': 1 to {MAX_SNAPSHOT_LOCK_DAYS} days (the EBS "
                              "Snapshot Lock range)")
        lock_mode = str(get("evidenceLockMode") or "COMPLIANCE").strip().upper()
        if lock_mode not in ("GOVERNANCE", "COMPLIANCE"):
            raise ConfigError(f"context 'evidenceLockMode': GOVERNANCE or COMPLIANCE, got {lock_mode!r}")
        log_level = str(get("logLevel") or "INFO").strip().upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"context 'logLevel': DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
        key_arn = str(get("forensicsKeyArn") or "").strip()
        if key_arn and not re.match(rf"^arn:[\w-]+:kms:{forensics_region}:{forensics}:key/[\w-]+$", key_arn):
            raise ConfigError("context 'forensicsKeyArn': expected the ARN of a key of the forensics account in "
                              f"{forensics_region} (the forensics region: arn:aws:kms:{forensics_region}:{forensics}:"
                              f"key/...), got {key_arn!r}")
        protected = _list(get("protectedPrincipals"), "protectedPrincipals")
        bad = [p for p in protected if not p.startswith("arn:")]
        if bad:  # the functions would refuse to contain anything (fail closed): refuse to deploy that instead
            raise ConfigError(f"context 'protectedPrincipals': not an ARN pattern (arn:...): {bad[0]!r}")
        custodian = str(get("evidenceCustodianRole") or "ir-evidence-custodian").strip()
        if not _ROLE_NAME.match(custodian) or custodian.startswith("ir-responder-"):
            raise ConfigError(f"context 'evidenceCustodianRole': an IAM role name outside ir-responder-*, got "
                              f"{custodian!r}")
        quarantine = _quarantine_policy(str(get("quarantinePolicyArn") or "").strip(), members, forensics, security)
        athena = _athena(get)
        email = str(get("notificationEmail") or "").strip()
        if email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", email):
            raise ConfigError(f"context 'notificationEmail': not an e-mail address: {email!r}")
        levels = _containment_levels(get("containmentLevels"), members)
        organization = _organization(get("organization"), layout=layout, security=security, forensics=forensics,
                                     members=members)
        return cls(
            organization=organization,
            containment_levels=levels,
            layout=layout, region=region, regions=regions, forensics_region=forensics_region,
            security_account=security, forensics_account=forensics,
            member_accounts=members, external_id=external_id, notification_email=email,
            incident_table_name=table, forensics_key_arn=key_arn,
            quarantine_policy_arn=quarantine,
            protected_principals=protected,
            protected_tag=str(get("protectedTag") or "ir:protected").strip(),
            observe_only=_bool(get("observeOnly") or False, "observeOnly"),
            isolation_cidrs=_list(get("isolationCidrs"), "isolationCidrs"),
            snapshot_retention=snapshots, evidence_min_interval_minutes=interval, key_scope=key_scope,
            log_level=log_level,
            network_acl_isolation=_bool(True if get("networkAclIsolation") is None else get("networkAclIsolation"),
                                        "networkAclIsolation"),
            remove_console_access=_bool(True if get("removeConsoleAccess") is None else get("removeConsoleAccess"),
                                        "removeConsoleAccess"),
            log_retention_days=retention, evidence_retention_days=evidence_days, evidence_lock_mode=lock_mode,
            evidence_custodian_role=custodian, security_account_is_member=security_is_member, **athena,
        )


MAX_REGIONS = 40  # more than AWS has: a longer list is a mistake (each region is a stack per member account)


def _regions(get: Callable[[str], Any], region: str) -> tuple[tuple[str, ...], str]:
    """`regions` (the responder's region first, no duplicates) and `forensicsRegion`, each a well-formed region;
    `regions` must name the responder's region (the list is the estate, the responder runs in one of its regions)."""
    listed = _list(get("regions"), "regions")
    for i, name in enumerate(listed):
        if not _REGION.match(name):
            raise ConfigError(f"context 'regions[{i}]': expected a region such as eu-west-1, got {name!r}")
    if listed and region not in listed:
        raise ConfigError(f"context 'regions': must include the responder's region {region} (context 'region'), "
                          f"got {', '.join(listed)}")
    regions = tuple(dict.fromkeys((region, *listed))) if listed else ()
    if len(regions) > MAX_REGIONS:
        raise ConfigError(f"context 'regions': at most {MAX_REGIONS} regions, got {len(regions)}")
    forensics_region = str(get("forensicsRegion") or "").strip() or region
    if not _REGION.match(forensics_region):
        raise ConfigError(f"context 'forensicsRegion': expected a region such as eu-west-1, got {forensics_region!r}")
    return regions, forensics_region


def _organization(value: Any, *, layout: str, security: str, forensics: str,
                  members: tuple[str, ...]) -> Organization | None:
    """The `organization` key (a JSON object, or its text with -c): validated key by key, errors naming it."""
    if value is None or value == "" or value == {}:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ConfigError(f"context 'organization': not a JSON object: {value!r}") from exc
    if not isinstance(value, Mapping):
        raise ConfigError(f"context 'organization': expected a JSON object, got {value!r}")
    if layout != MULTI_ACCOUNT:
        raise ConfigError("context 'organization': only with layout=multi-account")
    unknown = sorted(set(value) - set(ORGANIZATION_KEYS))
    if unknown:
        raise ConfigError(f"context 'organization.{unknown[0]}': unknown key (expected {', '.join(ORGANIZATION_KEYS)})")
    org_id = str(value.get("organizationId") or "").strip()
    if not _ORG_ID.fullmatch(org_id):
        raise ConfigError(f"context 'organization.organizationId': expected o- and 10 to 32 lower-case letters or "
                          f"digits, got {org_id or None!r}")
    units = tuple(dict.fromkeys(_list(value.get("organizationalUnitIds"), "organization.organizationalUnitIds")))
    if not units:
        raise ConfigError("context 'organization.organizationalUnitIds': at least one OU (ou-...) or root (r-...) id")
    for i, unit in enumerate(units):
        if not _OU_ID.fullmatch(unit):
            raise ConfigError(f"context 'organization.organizationalUnitIds[{i}]': expected ou-xxxx-xxxxxxxx or "
                              f"r-xxxx, got {unit!r}")
    management = _account(value.get("managementAccount"), "organization.managementAccount")
    if management == forensics:
        raise ConfigError("context 'organization.managementAccount': the forensics account cannot be the "
                          "organization's management account (the evidence account holds no organization power)")
    admin = str(value.get("delegatedAdministrator") or "").strip()
    if admin:
        admin = _account(admin, "organization.delegatedAdministrator")
        if admin == forensics:
            raise ConfigError("context 'organization.delegatedAdministrator': not the forensics account (the "
                              "evidence account holds no power over other accounts)")
        if admin == management:
            admin = ""
    excluded = tuple(dict.fromkeys(_account(a, "organization.excludeAccounts")
                                   for a in _list(value.get("excludeAccounts"), "organization.excludeAccounts")))
    percentages = {}
    for key, default, low in (("maxConcurrentPercentage", 25, 1), ("failureTolerancePercentage", 10, 0)):
        raw = value.get(key)
        number = _int(default if raw is None else raw, f"organization.{key}")
        if not low <= number <= 100:
            raise ConfigError(f"context 'organization.{key}': {low} to 100, got {number}")
        percentages[key] = number
    retain = _bool(value.get("retainStacksOnAccountRemoval") or False, "organization.retainStacksOnAccountRemoval")
    # the StackSet never deploys to the forensics account (a member role there could act on the evidence), the
    # security account, or the accounts `cdk deploy` gives the member stack (memberAccounts: the role names are
    # account-wide, a second copy would fail); the management account gets no stack instance anyway (AWS).
    skipped = sorted({*excluded, forensics, security, *members} - {management})
    return Organization(organization_id=org_id, organizational_unit_ids=units, management_account=management,
                        delegated_administrator=admin, exclude_accounts=tuple(skipped),
                        retain_stacks_on_account_removal=retain,
                        max_concurrent_percentage=percentages["maxConcurrentPercentage"],
                        failure_tolerance_percentage=percentages["failureTolerancePercentage"])


def _containment_levels(value: Any, members: tuple[str, ...]) -> str:
    """The containment-level policy, validated with the functions' own parser (responder.levels): a bad key fails
    the synth naming it. Rules may name only member accounts. Returned as compact JSON for IR_CONTAINMENT_LEVELS."""
    if value is None or value == "" or value == {}:
        return ""
    import sys

    lambdas = str(ROOT / "lambdas")
    if lambdas not in sys.path:
        sys.path.insert(0, lambdas)
    from responder.levels import SYNTH_MIN_TIMEOUT_SECONDS, LevelsError, parse

    try:
        policy = parse(value, min_timeout=SYNTH_MIN_TIMEOUT_SECONDS)
    except LevelsError as exc:
        raise ConfigError(f"context {exc.key!r}: {exc.problem}") from None
    for name, accounts in policy["accountGroups"].items():
        for i, account in enumerate(accounts):
            if account not in members:
                raise ConfigError(f"context 'containmentLevels.accountGroups.{name}[{i}]': {account} is not one of "
                                  f"memberAccounts ({', '.join(members)})")
    for r, rule in enumerate(policy["rules"]):
        for i, account in enumerate(rule["accounts"]):
            if account.isdigit() and account not in members:
                raise ConfigError(f"context 'containmentLevels.rules[{r}].accounts[{i}]': {account} is not one of "
                                  f"memberAccounts ({', '.join(members)})")
    return json.dumps(policy, separators=(",", ":"), sort_keys=True)
def _athena(get: Callable[[str], Any]) -> dict[str, str]:
    """The trail table keys: all of `ATHENA_KEYS` or none; each checked against what Athena, Glue and S3 accept."""
    values = {k: str(get(k) or "").strip() for k in (*ATHENA_KEYS, "athenaDatePartition")}
    named = [k for k in ATHENA_KEYS if values[k]]
    lake = str(get("cloudTrailLakeEventDataStore") or "").strip()
    if lake:
        if named:
            raise ConfigError(f"context 'cloudTrailLakeEventDataStore': name either the Athena table ({named[0]}...) "
                              "or the CloudTrail Lake event data store, not both")
        if not _EVENT_DATA_STORE.match(lake):
            raise ConfigError("context 'cloudTrailLakeEventDataStore': expected an event data store ARN "
                              f"(arn:aws:cloudtrail:<region>:<account>:eventdatastore/<id>), got {lake!r}")
        return {"lake_event_data_store": lake}
    if not named:
        if values["athenaDatePartition"]:
            raise ConfigError("context 'athenaDatePartition': set only with athenaDatabase, athenaTable, "
                              "athenaWorkgroup, athenaOutputLocation and athenaTrailBucket")
        return {}
    for key in ATHENA_KEYS:
        if not values[key]:
            raise ConfigError(f"context {key!r}: required when {named[0]} is set (the trail table needs "
                              f"{', '.join(ATHENA_KEYS)})")
    checks = {"athenaDatabase": (_ATHENA_IDENTIFIER, "a Glue database name: lower-case letters, digits, _"),
              "athenaTable": (_ATHENA_IDENTIFIER, "a Glue table name: lower-case letters, digits, _"),
              "athenaDatePartition": (_ATHENA_IDENTIFIER, "a partition column name: lower-case letters, digits, _"),
              "athenaWorkgroup": (_ATHENA_WORKGROUP, "an Athena workgroup name: letters, digits, . _ -"),
              "athenaOutputLocation": (_S3_LOCATION, "an S3 location s3://bucket/prefix/ (ending in /)"),
              "athenaTrailBucket": (_TRAIL_BUCKET, "a bucket name, optionally with a prefix (bucket/AWSLogs/)")}
    for key, (pattern, what) in checks.items():
        if values[key] and not pattern.match(values[key]):
            raise ConfigError(f"context {key!r}: expected {what}, got {values[key]!r}")
    return {"athena_database": values["athenaDatabase"], "athena_table": values["athenaTable"],
            "athena_workgroup": values["athenaWorkgroup"], "athena_output_location": values["athenaOutputLocation"],
            "athena_trail_bucket": values["athenaTrailBucket"], "athena_date_partition": values["athenaDatePartition"]}


def _quarantine_policy(arn: str, members: tuple[str, ...], forensics: str, security: str) -> str:
    """"" (the default, AWSCompromisedKeyQuarantineV2), an AWS `AWSCompromisedKeyQuarantine*` policy, or a customer
    managed policy of the (single) member account. Anything else, AdministratorAccess above all, is refused: the
    member role may attach exactly this policy to any user."""
    if not arn or _AWS_QUARANTINE.match(arn):
        return arn
    customer = _CUSTOMER_POLICY.match(arn)
    if customer and customer.group(1) != "aws":
        owner = customer.group(1)
        if owner in (forensics, security) and owner not in members:
            raise ConfigError(f"context 'quarantinePolicyArn': {arn!r} belongs to the forensics or security account,"
                              " where no user is quarantined")
        if set(members) != {owner}:
            raise ConfigError(f"context 'quarantinePolicyArn': the customer managed policy {arn!r} exists only in "
                              f"account {owner}; with member accounts {', '.join(members)} use an AWS "
                              "AWSCompromisedKeyQuarantine* policy (README \"Quarantine policy\")")
        return arn
    raise ConfigError(f"context 'quarantinePolicyArn': expected one of AWS's AWSCompromisedKeyQuarantine* policies or "
                      f"a customer managed quarantine policy (README \"Quarantine policy\"), got {arn!r}")
