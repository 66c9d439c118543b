"""Names of everything the stacks create, shared by the CDK stacks and the local runtime (`local_stacks`).

Dependency-free (no CDK import). Every role the responder runs as is named `ir-responder-*`: the protection check
treats those roles as the responder's own, and the member and forensics roles deny every change to them. The member
and forensics roles trust only the exact ARNs of the function roles that need them (`stacks.tasks`).
"""
from __future__ import annotations

from stacks.catalog import FUNCTIONS, FunctionSpec

ROLE_PREFIX = "ir-responder-"

# The names below that the Lambda code also knows (responder.settings) are repeated here on purpose, so that
# this module imports nothing from the Lambda asset; tests/infra checks they are equal.
MEMBER_ROLE_NAME = "ir-responder-member"
# Read-only twin of the member role (stacks.member_stack): what Triage may read in a member account (an attack
# sequence's Auto Scaling groups), without the member role's power to change anything.
MEMBER_READ_ROLE_NAME = MEMBER_ROLE_NAME + "-read"
# The release twin (stacks.member_stack): only the undo actions of a release (responder.release), trusted by the
# release function's role alone; the member role gains none of them.
MEMBER_RELEASE_ROLE_NAME = MEMBER_ROLE_NAME + "-release"
FORENSICS_ROLE_NAME = "ir-responder-forensics"
# The one role that may sign with the custody key (forensics account), assumed only by Finalize's role: the role that
# writes evidence (FORENSICS_ROLE_NAME) cannot sign it.
SIGNER_ROLE_NAME = "ir-responder-custody-signer"
SHARING_KEY_ALIAS = "alias/ir-evidence-sharing"
DENY_ALL_PROFILE = "ir-quarantine-deny-all"
DENY_ALL_ROLE_NAME = "ir-responder-quarantine-deny-all"
FORENSICS_KEY_ALIAS = "alias/ir-forensics-evidence"
# The forensics account's asymmetric key that signs every evidence manifest (chain of custody).
CUSTODY_KEY_ALIAS = "alias/ir-custody-signing"
# The one role that may delete object versions or bypass governance retention in the evidence bucket. The stacks do
# not create it: a break-glass role the forensics account's owners create (with MFA) when a court order says so.
DEFAULT_CUSTODIAN_ROLE_NAME = "ir-evidence-custodian"
STATE_MACHINE_ROLE_NAME = "ir-responder-state-machine"
TOPIC_NAME = "ir-responder-incidents"
TOPIC_KEY_ALIAS = "alias/ir-responder-notifications"
RULE_NAME = "ir-responder-guardduty-findings"
RULE_ROLE_NAME = "ir-rule-start-containment"  # not ir-responder-*: the member and forensics roles do not trust it
RULE_RETRY_ATTEMPTS = 24
RULE_MAX_EVENT_AGE_SECONDS = 6 * 3600
DLQ_NAME = "ir-responder-guardduty-findings-dlq"
STATE_MACHINE_LOG_GROUP = "/aws/vendedlogs/states/ir-responder-containment"

RESPONDER_STACK = "IrResponder"
FORENSICS_STACK = "IrForensics"
MEMBER_STACK_SETS = "IrMemberStackSets"


def member_stack(account: str) -> str:
    return f"IrMember-{account}"


def function_role_name(spec: FunctionSpec) -> str:
    """One role per function, so CloudTrail names the task behind every assumed-role session."""
    return f"{spec.function_name}-role"


def responder_role_arns(partition: str, security_account: str) -> tuple[str, ...]:
    """Exact ARNs of the responder's own roles in the security account (one per function, the state machine's):
    the protection check recognises these, never a name prefix an attacker could copy in another account."""
    return tuple(role_arn(partition, security_account, n)
                 for n in [function_role_name(spec) for spec in FUNCTIONS] + [STATE_MACHINE_ROLE_NAME])


def function_log_group(spec: FunctionSpec) -> str:
    return f"/aws/lambda/{spec.function_name}"


def evidence_bucket(account: str, region: str) -> str:
    return f"ir-evidence-{account}-{region}"


def access_log_bucket(account: str, region: str) -> str:
    return f"ir-evidence-access-logs-{account}-{region}"


def role_arn(partition: str, account: str, name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


def key_alias_arn(partition: str, region: str, account: str, alias: str) -> str:
    return f"arn:{partition}:kms:{region}:{account}:{alias}"


def responder_roles_pattern(partition: str, security_account: str) -> str:
    """aws:PrincipalArn pattern of the responder's own roles in the security account."""
    return f"arn:{partition}:iam::{security_account}:role/{ROLE_PREFIX}*"


# The IAM watch of every member account (stacks.policies.iam_watch_patterns): in us-east-1, where IAM's CloudTrail
# events reach EventBridge.
IAM_WATCH_RULE_PREFIX = "ir-responder-iam-watch-"
IAM_WATCH_TOPIC = "ir-responder-iam-watch"
IAM_WATCH_KEY_ALIAS = "alias/ir-responder-iam-watch"


def member_watch_stack(account: str) -> str:
    return f"IrMemberWatch-{account}"


# Exposed-key signals (stacks.catalog.SIGNAL_PATTERNS): the responder's rules, and the forwarding rules in the regions
# those events are published in. The forwarder role is not ir-responder-*: the member and forensics roles do not
# trust it; one per region (IAM names are account-wide, the stacks are regional).
SIGNAL_RULE_PREFIX = "ir-responder-"
FORWARD_RULE_PREFIX = "ir-forward-"
FORWARDER_ROLE_PREFIX = "ir-signal-forwarder-"
SIGNAL_BUS_STATEMENT = "ir-responder-signal-forwarders"


def signal_rule(suffix: str) -> str:
    return SIGNAL_RULE_PREFIX + suffix


def forwarder_role_name(region: str) -> str:
    return FORWARDER_ROLE_PREFIX + region


def signal_forwarder_stack(account: str, region: str) -> str:
    return f"IrSignals-{account}-{region}"


# Every region of the estate (README "Every region"): a findings forwarder in the security account per region other
# than the responder's, and the regional member resources (the sharing key) per member account and region. The
# forwarder role is not ir-responder-*: the member and forensics roles do not trust it; one per region (IAM names
# are account-wide, the stacks regional), apart from the exposed-key forwarders' (FORWARDER_ROLE_PREFIX).
FINDINGS_FORWARD_RULE = "ir-forward-guardduty-findings"
FINDING_FORWARDER_ROLE_PREFIX = "ir-finding-forwarder-"


def finding_forwarder_role_name(region: str) -> str:
    return FINDING_FORWARDER_ROLE_PREFIX + region


def finding_forwarder_stack(account: str, region: str) -> str:
    return f"IrFindings-{account}-{region}"


def member_region_stack(account: str, region: str) -> str:
    return f"IrMemberRegion-{account}-{region}"
