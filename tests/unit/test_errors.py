"""The error policy (responder.errors): one classifier, per-service transient tables checked against botocore's own
retry lists, and the typed errors the ASL's Retry/Catch name."""
from __future__ import annotations

import json
from pathlib import Path

import botocore
import botocore.session
import pytest
from botocore.exceptions import (ClientError, ConnectTimeoutError, EndpointConnectionError, NoCredentialsError,
                                 ParamValidationError, ReadTimeoutError)
from botocore.retries import standard

from responder import errors
from responder.errors import (RAISE, RECORD, TRANSIENT, AccountAccessError, TransientAwsError, best_effort,
                              classify, recorded)

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(errors.SERVICE_TRANSIENT)


def aws_error(code: str, status: int = 400, op: str = "Op") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, op)


# -- the three verdicts ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code,service", [
    ("Throttling", "iam"), ("ServiceFailure", "iam"), ("Unavailable", "ec2"), ("EC2ThrottledException", "ec2"),
    ("RequestLimitExceeded", "ec2"), ("DependencyThrottle", "elb"), ("ConditionalRequestConflict", "s3"),
    ("ProvisionedThroughputExceededException", "dynamodb"), ("LimitExceededException", "dynamodb"),
    ("ResourceContention", "autoscaling"), ("Throttled", "sns"), ("RequestThrottledException", "ebs"),
])
def test_throttling_and_service_trouble_are_transient(code, service):
    assert classify(aws_error(code), service) == TRANSIENT
    assert classify(aws_error(code)) == TRANSIENT or code in errors.AMBIGUOUS_CODES


@pytest.mark.parametrize("code,service", [
    ("LimitExceeded", "iam"), ("SnapshotLimitExceeded", "ec2"), ("LimitExceededException", "kms"),
    ("LimitExceeded", "autoscaling"), ("AccessDenied", "iam"), ("UnauthorizedOperation", "ec2"),
    ("NoSuchEntity", "iam"), ("InvalidInstanceID.NotFound", "ec2"), ("ConcurrentLimitExceededException", "ebs"),
])
def test_quotas_and_refusals_are_recorded(code, service):
    assert classify(aws_error(code), service) == RECORD
    assert classify(aws_error(code)) == RECORD


def test_a_quota_stays_recorded_even_when_aws_answers_it_with_a_server_status():
    assert classify(aws_error("LimitExceeded", 500), "iam") == RECORD


def test_a_code_that_is_throttling_in_one_service_and_a_quota_in_another_needs_the_service():
    assert errors.AMBIGUOUS_CODES == {"LimitExceededException"}
    assert classify(aws_error("LimitExceededException")) == RECORD


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_unknown_codes_with_a_retryable_status_are_transient(status):
    assert classify(aws_error("SomethingNew", status), "ec2") == TRANSIENT


@pytest.mark.parametrize("exc", [
    EndpointConnectionError(endpoint_url="https://ec2"), ConnectTimeoutError(endpoint_url="https://ec2"),
    ReadTimeoutError(endpoint_url="https://ec2"), TransientAwsError("x"),
])
def test_connection_errors_are_transient(exc):
    assert classify(exc) == TRANSIENT


@pytest.mark.parametrize("exc", [
    KeyError("x"), TypeError("x"), ParamValidationError(report="bad"), NoCredentialsError(),
    AccountAccessError("cannot assume"),
])
def test_bugs_and_typed_errors_are_raised(exc):
    assert classify(exc) == RAISE


def test_recorded_returns_the_code_raises_transient_as_typed_and_bugs_unchanged():
    assert recorded(aws_error("AccessDenied"), "iam:AttachUserPolicy") == "AccessDenied"
    with pytest.raises(TransientAwsError, match="ec2:CreateSnapshots: RequestLimitExceeded") as got:
        recorded(aws_error("RequestLimitExceeded", 503), "ec2:CreateSnapshots", "ec2")
    assert isinstance(got.value.__cause__, ClientError)
    bug = KeyError("Reservations")
    with pytest.raises(KeyError) as raised:
        recorded(bug, "ec2:DescribeInstances")
    assert raised.value is bug
    already = TransientAwsError("x")
    with pytest.raises(TransientAwsError) as again:
        recorded(already, "y")
    assert again.value is already  # not wrapped twice


def test_best_effort_bookkeeping_never_hides_a_bug():
    assert best_effort(aws_error("AccessDenied")) and best_effort(aws_error("Throttling"))
    assert best_effort(AccountAccessError("x")) and best_effort(TransientAwsError("x"))
    assert not best_effort(KeyError("x")) and not best_effort(ParamValidationError(report="bad"))


# -- the tables against botocore's own lists ----------------------------------------------------------------------
def test_every_botocore_throttling_and_transient_code_is_transient_for_every_service():
    botocore_codes = (set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES)
                      | set(standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES))
    for service in SERVICES:
        missing = {c for c in botocore_codes if not errors.transient_code(c, service)}
        # botocore retries LimitExceededException everywhere; it is a quota where the service documents one
        assert missing <= errors.QUOTA_CODES.get(service, set()) | {"LimitExceededException"}, (service, missing)
    assert set(standard.TransientRetryableChecker._TRANSIENT_STATUS_CODES) <= errors.TRANSIENT_STATUS
    assert set(standard.ThrottlingStatusCodeChecker._THROTTLING_STATUS_CODES) <= errors.TRANSIENT_STATUS
    assert all(issubclass(cls, errors.TRANSIENT_EXCEPTIONS)
               for cls in standard.TransientRetryableChecker._TRANSIENT_EXCEPTION_CLS)


def _retry_json_codes() -> dict[str, set[str]]:
    data = json.loads((Path(botocore.__file__).parent / "data" / "_retry.json").read_text())
    definitions = data["definitions"]

    def codes(policies: dict) -> set[str]:
        found = set()
        for policy in policies.values():
            policy = definitions[policy["$ref"]] if "$ref" in policy else policy
            code = policy.get("applies_when", {}).get("response", {}).get("service_error_code")
            if code:
                found.add(code)
        return found

    out = {"__default__": codes(data["retry"]["__default__"]["policies"])}
    for service, config in data["retry"].items():
        if service != "__default__":
            out[service] = set().union(*(codes(op.get("policies", {})) for op in config.values()))
    return out


def test_botocore_retry_json_codes_are_transient_for_their_services():
    listed = _retry_json_codes()
    assert listed["__default__"] and listed["dynamodb"] and listed["ec2"]
    for service in SERVICES:
        wanted = listed["__default__"] | listed.get(service, set())
        missing = {c for c in wanted if not errors.transient_code(c, service)}
        assert not missing, (service, missing)


def test_errors_modeled_retryable_by_botocore_are_transient():
    session = botocore.session.get_session()
    for service in SERVICES:
        model = session.get_service_model(service)
        for name in model.shape_names:
            shape = model.shape_for(name)
            if shape.metadata.get("exception") and shape.metadata.get("retryable"):
                code = shape.metadata.get("error", {}).get("code", name)
                assert errors.transient_code(code, service), (service, code)


def test_every_table_names_a_real_service_and_quota_codes_are_never_transient_there():
    session = botocore.session.get_session()
    available = set(session.get_available_services())
    assert set(errors.SERVICE_TRANSIENT) | set(errors.QUOTA_CODES) <= available
    for service, quotas in errors.QUOTA_CODES.items():
        assert not quotas & errors.TRANSIENT_CODES.get(service, errors.COMMON_TRANSIENT), service


def test_the_issue_s_codes_are_in_their_service_tables():
    expected = {"ec2": {"EC2ThrottledException", "Unavailable"}, "iam": {"ServiceFailure"},
                "elb": {"DependencyThrottle"}, "s3": {"ConditionalRequestConflict"},
                "dynamodb": {"ProvisionedThroughputExceededException", "LimitExceededException"}}
    for service, codes in expected.items():
        assert codes <= errors.TRANSIENT_CODES[service]


def test_modeled_service_codes_in_the_tables_exist_in_botocore_models():
    """A typo in a table would silently never match: every per-service code that the service models is spelled as
    the model spells it (EC2 models no errors; its codes come from the EC2 error-code reference)."""
    session = botocore.session.get_session()
    for service, codes in errors.SERVICE_TRANSIENT.items():
        model = session.get_service_model(service)
        modeled = {model.shape_for(n).metadata.get("error", {}).get("code", n)
                   for n in model.shape_names if model.shape_for(n).metadata.get("exception")}
        if not modeled:
            continue
        unknown = codes - modeled - errors.COMMON_TRANSIENT - _retry_json_codes().get(service, set())
        assert unknown <= {"Throttling", "ThrottlingException", "OperationAborted", "SlowDown", "BadDigest",
                           "ConditionalRequestConflict", "RequestTimeout"}, (service, unknown)


def test_the_evidence_chain_s_deferred_limits_are_not_retried_as_transient():
    from responder.evidence import DEFERRED_CODES

    for service in ("ec2", "ebs", None):
        assert not any(errors.transient_code(c, service) for c in DEFERRED_CODES)


# -- the typed errors are what the ASL names ----------------------------------------------------------------------
def _error_names(states: dict) -> set[str]:
    names = set()
    for state in states.values():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            names.update(rule["ErrorEquals"])
        for branch in state.get("Branches", []):
            names |= _error_names(branch["States"])
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                names |= _error_names(state[key]["States"])
    return names


def test_every_error_the_asl_names_is_a_typed_error_or_a_service_error():
    asl = json.loads((ROOT / "state_machines" / "containment.asl.json").read_text())
    ours = {n for n in _error_names(asl["States"]) if not n.startswith(("States.", "Lambda."))}
    typed = {c.__name__ for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.ResponderError) and c is not errors.ResponderError}
    assert ours and ours <= typed, ours - typed
    assert "TransientAwsError" in ours
