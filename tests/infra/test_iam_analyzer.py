"""An independent IAM least-privilege analyzer over every synthesized role and policy (cloudsplaining, pinned in
requirements-dev.txt): in its strictest mode (statements scoped to ARNs or conditions count as findings too), no
privilege-escalation, resource-exposure, credentials-exposure or data-exfiltration finding is left unexplained -
each one is acknowledged with a reason in stacks.policies.ANALYZER_REASONS, next to the statements - and no
acknowledgement is stale."""
from __future__ import annotations

from typing import Any

from stacks import policies
from tests.worlds.infra import LAYOUTS, shared_root, synthesize  # noqa: F401

CATEGORIES = {
    "PrivilegeEscalation": lambda d: [a for p in d.allows_privilege_escalation for a in p["actions"]],
    "ResourceExposure": lambda d: d.permissions_management_without_constraints,
    "CredentialsExposure": lambda d: d.credentials_exposure,
    "DataExfiltration": lambda d: d.allows_data_exfiltration_actions,
}


def _plain(value: Any) -> Any:
    """Template values as text (`Fn::Join`, `Ref`, `GetAtt` flattened), so the analyzer reads ARNs."""
    from stacks.nag import flatten

    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        if any(k in value for k in ("Fn::Join", "Ref", "Fn::GetAtt", "Fn::Sub", "Fn::ImportValue")):
            return flatten(value)
        return {k: _plain(v) for k, v in value.items()}
    return value


def _documents(template: dict) -> list[tuple[str, dict]]:
    """(role name, policy document) of every inline role policy and AWS::IAM::Policy of the template."""
    resources = template["Resources"]
    names = {lid: r["Properties"].get("RoleName", lid) for lid, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    found = []
    for lid, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                found.append((names[lid], _plain(policy["PolicyDocument"])))
        elif resource["Type"] == "AWS::IAM::Policy":
            for ref in resource["Properties"].get("Roles", []):
                found.append((names.get(ref.get("Ref"), str(ref)), _plain(resource["Properties"]["PolicyDocument"])))
    return found


def findings(assembly) -> set[tuple[str, str, str]]:
    from cloudsplaining.scan.policy_document import PolicyDocument

    out = set()
    for stack in assembly.stacks:
        for role, document in _documents(assembly.template(stack)):
            analyzed = PolicyDocument(document, flag_resource_arn_statements=True)
            for category, read in CATEGORIES.items():
                out.update((role, category, action) for action in read(analyzed))
    return out


def test_every_analyzer_finding_is_explained_and_no_explanation_is_stale(tmp_path_factory, worker_id):
    root = shared_root(tmp_path_factory, worker_id)
    found: set[tuple[str, str, str]] = set()
    for layout in sorted(LAYOUTS):
        found |= findings(synthesize(layout, root))
    assert found, "the analyzer found nothing at all: is it reading the roles?"
    unexplained = sorted(found - set(policies.ANALYZER_REASONS))
    assert unexplained == [], "explain each in stacks.policies.ANALYZER_REASONS, or narrow the permission"
    assert sorted(set(policies.ANALYZER_REASONS) - found) == [], "stale acknowledgement"
    assert not [f for f in found if f[1] == "PrivilegeEscalation"], "no privilege escalation path is acceptable"
    for reason in policies.ANALYZER_REASONS.values():
        assert len(reason) >= 60


def test_the_analyzer_would_catch_the_old_member_role():
    """The member role before issue 12 (PutRolePolicy on role/* with nothing denied, PassRole on any role): the
    analyzer reports it, so a regression cannot pass silently."""
    from cloudsplaining.scan.policy_document import PolicyDocument

    old = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:PutRolePolicy", "iam:PassRole", "iam:PutUserPolicy"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["ec2:RunInstances", "iam:CreateAccessKey"], "Resource": "*"}]}
    analyzed = PolicyDocument(old)
    assert analyzed.allows_privilege_escalation
    assert {"iam:PutRolePolicy", "iam:PutUserPolicy"} <= set(analyzed.permissions_management_without_constraints)
