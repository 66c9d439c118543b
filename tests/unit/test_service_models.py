"""The lean service models (responder.aws.service_models) are exactly what the generator makes from the installed
botocore and the responder's code, and the clients built on them still have every operation the code calls."""
from __future__ import annotations

import json

from botocore import xform_name

from responder.aws import clients, service_models


def test_the_committed_lean_models_are_up_to_date(tmp_path):
    service_models.generate(tmp_path)
    made = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*.json")}
    committed = {p.relative_to(service_models.MODELS): p.read_text() for p in service_models.MODELS.rglob("*.json")}
    stale = sorted(str(p) for p in set(made) | set(committed) if made.get(p) != committed.get(p))
    assert not stale, ("the lean service models are stale: run `.venv/bin/python -m responder.aws.service_models` "
                       f"from lambdas/ and commit the result ({stale})")


def test_every_operation_named_in_a_permissions_tuple_is_in_its_lean_model():
    """The IAM actions declared next to the adapters name API operations (for these services, one to one): each
    is callable on the lean client. S3 and KMS actions (and iam:PassRole) also authorize what other services do for us."""
    from responder import permissions

    declared = set(permissions.member_actions() + permissions.forensics_actions() + permissions.signer_actions()
                   + permissions.responder_actions())
    operations: dict[str, set[str]] = {}
    for path in service_models.MODELS.rglob("service-2.json"):
        model = json.loads(path.read_text())
        prefix = model["metadata"].get("signingName") or model["metadata"]["endpointPrefix"]
        operations.setdefault(prefix, set()).update(model["operations"])
    missing = sorted(a for a in declared if "*" not in a and a.split(":")[0] in operations
                     and a.split(":")[0] not in ("s3", "kms") and a != "iam:PassRole" and a.split(":")[1] not in operations[a.split(":")[0]])
    assert not missing, missing


def test_lean_clients_keep_their_service_s_name_paginators_and_exceptions():
    ec2 = clients._base_session().create_client("ec2", region_name="us-east-1")
    assert ec2.meta.service_model.signing_name == "ec2" and ec2.can_paginate("describe_volumes")
    assert hasattr(ec2, "create_snapshots") and not hasattr(ec2, "run_instances")
    sfn = clients._base_session().create_client("stepfunctions", region_name="us-east-1")
    assert sfn.exceptions.ExecutionDoesNotExist
    assert all(xform_name(op) in service_models.code_tokens() for op in ec2.meta.service_model.operation_names)
