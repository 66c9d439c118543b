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
    is callable on the lean client. S3 and KMS actions (and iam:PassRole) also authorize what other services do for us;
    secretsmanager:TagResource authorizes CreateSecret's Tags (Secrets Manager API reference, CreateSecret: "To add
    tags to the secret, you must also have secretsmanager:TagResource")."""
    from responder import permissions

    declared = set(permissions.member_actions() + permissions.forensics_actions() + permissions.signer_actions()
                   + permissions.responder_actions())
    operations: dict[str, set[str]] = {}
    for path in service_models.MODELS.rglob("service-2.json"):
        model = json.loads(path.read_text())
        prefix = model["metadata"].get("signingName") or model["metadata"]["endpointPrefix"]
        operations.setdefault(prefix, set()).update(model["operations"])
    missing = sorted(a for a in declared if "*" not in a and a.split(":")[0] in operations
                     and a.split(":")[0] not in ("s3", "kms") and a not in ("iam:PassRole", "secretsmanager:TagResource") and a.split(":")[1] not in operations[a.split(":")[0]])
    assert not missing, missing


def test_lean_clients_keep_their_service_s_name_paginators_and_exceptions():
    ec2 = clients._base_session().create_client("ec2", region_name="us-east-1")
    assert ec2.meta.service_model.signing_name == "ec2" and ec2.can_paginate("describe_volumes")
    # an operation the responder never calls (run_instances is called now: the forensic workstation)
    assert hasattr(ec2, "create_snapshots") and not hasattr(ec2, "terminate_instances")
    sfn = clients._base_session().create_client("stepfunctions", region_name="us-east-1")
    assert sfn.exceptions.ExecutionDoesNotExist
    assert all(xform_name(op) in service_models.code_tokens() for op in ec2.meta.service_model.operation_names)


REGIONS = ("us-east-1", "eu-west-1", "us-gov-west-1", "cn-north-1")


def test_lean_clients_resolve_the_same_endpoints_and_signing_as_botocore_s_own():
    """The lean endpoint data (endpoints.json with the responder's services only) changes nothing for them: same
    URL, signing name and signing Region in every partition, global services (IAM, STS) included."""
    import botocore.session

    full = botocore.session.Session()
    for service in service_models.SERVICES:
        for region in REGIONS:
            lean = clients._base_session().create_client(service, region_name=region, aws_access_key_id="x",
                                                          aws_secret_access_key="x")
            theirs = full.create_client(service, region_name=region, aws_access_key_id="x", aws_secret_access_key="x")
            assert (lean.meta.endpoint_url, lean.meta.region_name, lean._request_signer._signing_name,
                    lean._request_signer._region_name) == (
                theirs.meta.endpoint_url, theirs.meta.region_name, theirs._request_signer._signing_name,
                theirs._request_signer._region_name), (service, region)


def test_every_service_the_code_makes_a_client_for_has_lean_data():
    """A client for a service outside SERVICES would get botocore's full model but no endpoint data (the lean
    endpoints.json is first on the search path): add the service to SERVICES and regenerate."""
    import re

    made = set()
    for path in sorted(service_models.CODE.rglob("*.py")):
        made.update(re.findall(r"\b(?:client|member|forensics|own|member_client|forensics_client|create_client)"
                               r"\(\s*[\"']([a-z0-9-]+)[\"']", path.read_text()))
    assert made and made <= set(service_models.SERVICES), sorted(made - set(service_models.SERVICES))


def test_the_loader_finds_a_service_without_walking_every_folder_and_still_refuses_unknown_ones():
    import pytest
    from botocore.exceptions import UnknownServiceError
    from botocore.loaders import Loader

    loader = clients._base_session().get_component("data_loader")
    known = Loader().list_available_services("service-2")
    listed = loader.list_available_services("service-2")
    assert all(name in listed for name in known) and "not-a-service" not in listed and list(listed) == known
    with pytest.raises(UnknownServiceError):
        clients._base_session().create_client("not-a-service", region_name="us-east-1")
