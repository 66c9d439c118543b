"""Names of everything the stacks create, shared by the CDK stacks and the local runtime (`local_stacks`).

Dependency-free (no CDK import). Every role the responder runs as is named `ir-responder-*`: the member and forensics
roles trust exactly `arn:<partition>:iam::<security account>:role/ir-responder-*` (aws:PrincipalArn), and the
protection check treats those roles as the responder's own.
"""
from __future__ import annotations

from stacks.catalog import FUNCTIONS, FunctionSpec

ROLE_PREFIX = "ir-responder-"

# The names below that the Lambda code also knows (responder.settings) are repeated here on purpose, so that
# this module imports nothing from the Lambda asset; tests/infra checks they are equal.
MEMBER_ROLE_NAME = "ir-responder-member"
FORENSICS_ROLE_NAME = "ir-responder-forensics"
SHARING_KEY_ALIAS = "alias/ir-evidence-sharing"
DENY_ALL_PROFILE = "ir-quarantine-deny-all"
DENY_ALL_ROLE_NAME = "ir-responder-quarantine-deny-all"
FORENSICS_KEY_ALIAS = "alias/ir-forensics-evidence"
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
