"""Guard for every workflow test: each AWS operation a handler called is declared in an adapter's `permissions`
(responder.permissions: what the CDK roles grant). Checked when the session ends, over every call the handlers
made in this process (state_machines.local records them), so a new call without its IAM action fails the suite."""
from __future__ import annotations

import pytest

# Operations whose IAM action has another name (Service Authorization Reference), or that the platform grants.
ACTION_OF = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:ListObjectsV2": "s3:ListBucket",
}


def declared() -> set[str]:
    from responder import permissions

    return set(permissions.member_actions()) | set(permissions.forensics_actions()) | set(
        permissions.signer_actions()) | set(permissions.responder_actions()) | set(permissions.trail_actions()) | set(
        permissions.member_release_actions()) | {
        "sts:AssumeRole"}  # granted by stacks.policies.function_policy


def undeclared(calls: list[dict]) -> set[str]:
    allowed = declared()
    return {c["api"] for c in calls if ACTION_OF.get(c["api"], c["api"]) not in allowed}


@pytest.fixture(scope="session", autouse=True)
def every_call_is_declared_in_permissions():
    yield
    from state_machines import local

    missing = undeclared(local._CALLS)
    assert not missing, f"AWS operations called by the handlers but not declared in any adapter's permissions: {sorted(missing)}"
