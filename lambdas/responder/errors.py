"""Typed errors. Each class name is the `Error` Step Functions sees, so ASL `ErrorEquals` match these names.

A Lambda handler that raises one of these fails its Task with `errorType` = the class name.
"""
from __future__ import annotations


class ResponderError(Exception):
    """Base class; never raised itself."""


class InvalidInput(ResponderError):
    """The execution input is not a GuardDuty event, a finding or a manual request. Names the bad field."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class TransientAwsError(ResponderError):
    """AWS throttled or had an internal error even after the SDK's own retries: the Task is retried."""


class AccountAccessError(ResponderError):
    """The responder could not assume its role in the target account (member stack missing, trust wrong)."""


class SnapshotFailed(ResponderError):
    """An evidence snapshot or copy ended in the `error` state."""


class EvidenceIntegrityError(ResponderError):
    """The forensics copy's block-list digest differs from the source snapshot's."""


class ContainmentIncomplete(ResponderError):
    """At least one containment or evidence step failed; the output says which. Nothing was undone."""


# AWS error codes that mean "try again later". botocore's standard retry mode already retried them.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "ConcurrentModification",
        "ConcurrentModificationException",
    }
)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, else the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    return error_code(exc) in TRANSIENT_CODES
