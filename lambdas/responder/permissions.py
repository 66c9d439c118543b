"""The IAM actions each role needs, collected from the declarations next to the code that calls them.

Every adapter in `responder.aws` declares the actions it calls as module constants:

* ``MEMBER_ACTIONS``    - called in a workload account through the member role;
* ``MEMBER_RELEASE_ACTIONS`` - called in a workload account through the release role (undoing containment);
* ``FORENSICS_ACTIONS`` - called in the forensics account through the forensics role;
* ``SIGNER_ACTIONS``    - called in the forensics account through the custody signer role (signing manifests);
* ``RESPONDER_ACTIONS`` - called in the security account by the functions themselves;
* ``TRAIL_ACTIONS``     - called in the security account on the organization trail's query engine, and what the
  engine does with the caller's credentials (``ENGINE_*_ACTIONS``): granted only when the deployment names a trail
  table, scoped to it (stacks/policies.py `TrailTable`).

The CDK stacks grant exactly these unions, and a test checks the synthesized roles against them.
"""
from __future__ import annotations

import importlib

ADAPTERS = (
    "responder.aws.iam",
    "responder.aws.snapshots",
    "responder.aws.ebs",
    "responder.aws.cloudtrail",
    "responder.aws.dynamodb",
    "responder.aws.s3",
    "responder.aws.sns",
    "responder.aws.stepfunctions",
    "responder.aws.ec2",
    "responder.aws.autoscaling",
    "responder.aws.elb",
    "responder.aws.evidence_bucket",
    "responder.aws.kms",
    "responder.aws.athena",
    "responder.aws.lake",
    "responder.aws.workstation",
    "responder.aws.secrets",
)


def _union(attr: str) -> tuple[str, ...]:
    actions: set[str] = set()
    for name in ADAPTERS:
        actions.update(getattr(importlib.import_module(name), attr, ()))
    return tuple(sorted(actions))


def member_actions() -> tuple[str, ...]:
    return _union("MEMBER_ACTIONS")


def member_read_actions() -> tuple[str, ...]:
    """What the read-only member role allows (Triage's reads in a member account)."""
    return _union("MEMBER_READ_ACTIONS")


def member_release_actions() -> tuple[str, ...]:
    """What the release member role allows (responder.release: undo the responder's own containment)."""
    return _union("MEMBER_RELEASE_ACTIONS")


def forensics_actions() -> tuple[str, ...]:
    return _union("FORENSICS_ACTIONS")


def signer_actions() -> tuple[str, ...]:
    return _union("SIGNER_ACTIONS")


def responder_actions() -> tuple[str, ...]:
    return _union("RESPONDER_ACTIONS")


TRAIL_ATTRS = ("TRAIL_ACTIONS", "ENGINE_GLUE_ACTIONS", "ENGINE_TRAIL_READ_ACTIONS", "ENGINE_OUTPUT_ACTIONS",
               "LAKE_ACTIONS")


def trail_actions() -> tuple[str, ...]:
    """The trail queries' actions: the calls (``TRAIL_ACTIONS``) and what Athena does with the caller's credentials."""
    return tuple(sorted({a for attr in TRAIL_ATTRS for a in _union(attr)}))
