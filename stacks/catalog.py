"""The Lambda functions of the responder: one table read by the CDK stack and by the local runtime alike.

Dependency-free on purpose (no CDK import), so `state_machines.local` can read it without synthesizing.
Each entry names the ASL substitution (`${...}` in state_machines/containment.asl.json) its ARN fills.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_ROOT = ROOT / "lambdas"
ASL_PATH = ROOT / "state_machines" / "containment.asl.json"
STATE_MACHINE_NAME = "ir-responder-containment"


@dataclass(frozen=True)
class FunctionSpec:
    key: str  # construct id and ASL substitution stem
    handler: str  # module.function inside the lambdas/ asset
    timeout_seconds: int
    memory_mb: int
    description: str

    @property
    def substitution(self) -> str:
        return f"{self.key}FunctionArn"

    @property
    def function_name(self) -> str:
        return f"ir-responder-{self.key}"


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("Triage", "handlers.triage.handler", 30, 256,
                 "Validate and normalize the input, claim the incident, decide the disposition"),
    FunctionSpec("ContainIdentities", "handlers.identity.handler", 90, 256,
                 "Quarantine IAM users, revoke role sessions"),
    FunctionSpec("IsolateInstance", "handlers.isolate.handler", 240, 256,
                 "Isolate an EC2 instance without destroying evidence"),
    FunctionSpec("CollectEvidence", "handlers.evidence.handler", 840, 512,
                 "Snapshot, copy to forensics under its key, hash block lists, tag, retain"),
    FunctionSpec("RequestApproval", "handlers.approval.handler", 30, 256,
                 "Store the approval's task token in the incident record, notify how to approve or deny"),
    FunctionSpec("AnalyzeEvidence", "handlers.workstation.handler", 90, 256,
                 "Open an incident's forensics copies on a forensic workstation (analyze requests only)"),
    FunctionSpec("Release", "handlers.release.handler", 60, 256,
                 "Undo the responder's containment of named targets from the incident record (release requests only)"),
    FunctionSpec("Finalize", "handlers.finalize.handler", 90, 256,
                 "Outcome, incident record, evidence manifest, notification"),
)

# The EventBridge rule: GuardDuty findings of severity 4 and above (numeric matching: 3.9 does not match, 4.0 does).
EVENT_PATTERN: dict = {
    "source": ["aws.guardduty"],
    "detail-type": ["GuardDuty Finding"],
    "detail": {"severity": [{"numeric": [">=", 4]}]},
}

# Exposed-key signals outside GuardDuty (lambdas/responder/signals_exposed.py): rule suffix -> pattern. Trusted
# Advisor publishes its events in us-east-1 only; AWS_RISK_CREDENTIALS_EXPOSED is a global AWS Health event (IAM),
# delivered in us-east-1 with us-west-2 as the backup Region (AWS Health user guide, "Creating EventBridge rules for
# AWS Region coverage"). Both back-up deliveries name the same event: the incident id makes the second a duplicate.
SIGNAL_PATTERNS: dict[str, dict] = {
    "trusted-advisor-exposed-keys": {
        "source": ["aws.trustedadvisor"],
        "detail-type": ["Trusted Advisor Check Item Refresh Notification"],
        "detail": {"check-name": ["Exposed Access Keys"], "status": ["ERROR", "WARN"]},
    },
    "health-credentials-exposed": {
        "source": ["aws.health"],
        "detail-type": ["AWS Health Event"],
        "detail": {"eventTypeCode": ["AWS_RISK_CREDENTIALS_EXPOSED"]},
    },
}
SIGNAL_REGIONS: dict[str, tuple[str, ...]] = {
    "trusted-advisor-exposed-keys": ("us-east-1",),
    "health-credentials-exposed": ("us-east-1", "us-west-2"),
}
SIGNAL_SOURCES = ("aws.trustedadvisor", "aws.health")


def signal_forwarders(*, region: str, security_account: str,
                      member_accounts: tuple[str, ...]) -> dict[tuple[str, str], tuple[str, ...]]:
    """{(account, region): rule suffixes}: where a forwarding rule must exist so that every member account's
    exposed-key events reach the responder's event bus (`region` of `security_account`). None where the responder's
    own rules see the events (the security account, in the responder's region)."""
    out: dict[tuple[str, str], list[str]] = {}
    for account in dict.fromkeys(member_accounts):
        for suffix, published in SIGNAL_REGIONS.items():
            for where in published:
                if account == security_account and where == region:
                    continue
                out.setdefault((account, where), []).append(suffix)
    return {k: tuple(v) for k, v in out.items()}
