"""The error policy: typed errors, and the one classifier of AWS errors every task uses.

Typed errors. Each class name is the `Error` Step Functions sees, so the ASL's `ErrorEquals` match these names: a
Lambda handler that raises one of these fails its Task with `errorType` = the class name. Only these are raised;
the names a task *records* instead of raising (``SnapshotFailed``, ``EvidenceIntegrityError``, ``VolumeMissing``,
``ContainmentIncomplete``...) are failure codes in the result and the record, not exceptions.

The classifier (`classify`) sorts any exception into one of three verdicts:

* ``TRANSIENT`` - AWS throttled, was briefly unavailable or had an internal error, even after the SDK's own retries
  (standard mode, see aws/clients.py): raised as `TransientAwsError`, so Step Functions retries the idempotent task;
* ``RECORD`` - any other AWS error (access denied, a quota, a resource in the wrong state): recorded as the
  failure of that step; the action goes on with its independent steps;
* ``RAISE`` - not an AWS error (a bug: KeyError, ParamValidationError...) or a typed error already decided: it
  propagates, so bugs crash loudly and reach the Task's Catch.

`recorded(exc, what)` applies the policy at a call site: it returns the AWS error code to record, or raises.

The transient codes are one table per service (`TRANSIENT_CODES`), built from botocore's own retry lists and the
services' error documentation (tests/unit/test_errors.py checks them against the installed botocore).
"""
from __future__ import annotations

from botocore.exceptions import ClientError, ConnectionClosedError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError


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


class IncidentRecordError(ResponderError):
    """The incident record could not be claimed (table missing, access denied): nothing was changed."""


# -- transient codes ---------------------------------------------------------------------------------------------
# Every service: botocore's standard retry mode (botocore/retries/standard.py: ThrottledRetryableChecker and
# TransientRetryableChecker), except `LimitExceededException`, which is throttling in some services (DynamoDB,
# Kinesis) and a quota in others (KMS): it is listed per service below. Plus the generic server-side codes.
COMMON_TRANSIENT = frozenset({
    # botocore standard.py, throttling
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
    # botocore standard.py, transient
    "RequestTimeout", "RequestTimeoutException",
    # server side (HTTP 500/503 in every service's error documentation)
    "InternalError", "InternalFailure", "InternalServerError", "InternalServerException", "ServiceUnavailable",
    "ServiceUnavailableException",
    # credentials that expired in flight: the retried task gets a fresh session (aws/clients.py refreshes them)
    "ExpiredToken", "ExpiredTokenException", "RequestExpired",
})

# Per service (botocore service names): codes of that service that mean "try again". Sources: botocore
# data/_retry.json, the `retryable` trait of the service model, and each service's documented error codes.
SERVICE_TRANSIENT: dict[str, frozenset[str]] = {
    # EC2 API reference, "Error codes": Unavailable (503, server overloaded), ConcurrentTagAccess ("allow
    # sufficient wait time for the previous request to complete, then retry"); _retry.json: RequestLimitExceeded,
    # EC2ThrottledException.
    "ec2": frozenset({"RequestLimitExceeded", "EC2ThrottledException", "Unavailable", "ConcurrentTagAccess"}),
    # IAM API reference, "Common errors" and the model: ServiceFailure (500), ConcurrentModification (409, "wait a
    # few minutes and submit your request again"). LimitExceeded is a quota (see QUOTA_CODES).
    "iam": frozenset({"ServiceFailure", "ConcurrentModification", "Throttling"}),
    # _retry.json: IDPCommunicationError.
    "sts": frozenset({"IDPCommunicationError"}),
    # S3 "Error responses": ConditionalRequestConflict (409, PutObject: "retry"), OperationAborted (409, "try
    # again"), SlowDown (503); _retry.json: RequestTimeout, BadDigest.
    "s3": frozenset({"ConditionalRequestConflict", "OperationAborted", "SlowDown", "RequestTimeout", "BadDigest"}),
    # _retry.json and the model's retryable trait: ReplicatedWriteConflictException, TransactionInProgressException;
    # DynamoDB "Error handling": ProvisionedThroughputExceededException, RequestLimitExceeded, ThrottlingException,
    # LimitExceededException (concurrent control-plane operations), TransactionConflictException (an ongoing
    # transaction on the item), InternalServerError.
    "dynamodb": frozenset({"ProvisionedThroughputExceededException", "RequestLimitExceeded", "ThrottlingException",
                           "LimitExceededException", "TransactionConflictException",
                           "TransactionInProgressException", "ReplicatedWriteConflictException",
                           "InternalServerError"}),
    # SNS API reference: Throttled (429), KMSThrottling, InternalError (500).
    "sns": frozenset({"Throttled", "KMSThrottling", "InternalError"}),
    # KMS API reference: KMSInternalException (500), DependencyTimeoutException (503), ThrottlingException.
    # LimitExceededException is "a length constraint or quota was exceeded": not transient.
    "kms": frozenset({"KMSInternalException", "DependencyTimeoutException", "ThrottlingException"}),
    # EBS direct APIs: RequestThrottledException (account or dependency throttled), InternalServerException.
    # ConcurrentLimitExceededException is deferred by the evidence chain (its own longer wait), not retried here.
    "ebs": frozenset({"RequestThrottledException", "ThrottlingException", "InternalServerException"}),
    # Classic ELB API reference: DependencyThrottle (400).
    "elb": frozenset({"DependencyThrottle", "Throttling"}),
    # ELBv2 API reference: PriorRequestNotComplete (429), HealthUnavailable (500).
    "elbv2": frozenset({"PriorRequestNotComplete", "HealthUnavailable", "Throttling"}),
    # Auto Scaling API reference: ResourceContention (500, "a pending update to an Auto Scaling resource").
    "autoscaling": frozenset({"ResourceContention", "Throttling"}),
    "cloudtrail": frozenset({"ThrottlingException"}),
    "stepfunctions": frozenset({"ThrottlingException", "KmsThrottlingException"}),
}

# Codes that look like throttling but are quotas: never transient (retrying cannot succeed within a task).
QUOTA_CODES: dict[str, frozenset[str]] = {
    "iam": frozenset({"LimitExceeded"}),
    "autoscaling": frozenset({"LimitExceeded"}),
    "ec2": frozenset({"SnapshotLimitExceeded", "ResourceLimitExceeded", "ConcurrentSnapshotLimitExceeded",
                      "SnapshotCreationPerVolumeRateExceeded", "VolumeLimitExceeded",
                      "SecurityGroupLimitExceeded", "RulesPerSecurityGroupLimitExceeded"}),
    "kms": frozenset({"LimitExceededException"}),
    "ebs": frozenset({"ServiceQuotaExceededException", "ConcurrentLimitExceededException"}),
    "cloudtrail": frozenset({"ServiceQuotaExceededException"}),
}

TRANSIENT_CODES: dict[str, frozenset[str]] = {svc: COMMON_TRANSIENT | codes for svc, codes in SERVICE_TRANSIENT.items()}
# A code transient in one service and a quota in another counts as transient only when the service is known.
AMBIGUOUS_CODES = frozenset().union(*SERVICE_TRANSIENT.values()) & frozenset().union(*QUOTA_CODES.values())
# The service is not known (an adapter's read that raised inside a step): a code transient in any service is
# transient, except the ambiguous ones.
ANY_SERVICE_TRANSIENT = (COMMON_TRANSIENT | frozenset().union(*SERVICE_TRANSIENT.values())) - AMBIGUOUS_CODES

# botocore standard.py TransientRetryableChecker: HTTP status codes, and connection-level exceptions.
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
TRANSIENT_EXCEPTIONS = (BotoConnectionError, HTTPClientError, ConnectionClosedError)

TRANSIENT, RECORD, RAISE = "transient", "record", "raise"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, else the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    return type(exc).__name__


def _status(exc: ClientError) -> int | None:
    status = (exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def transient_code(code: str, service: str | None = None) -> bool:
    """Whether `code` means "try again" in `service` (botocore's service name; None: not known)."""
    if service is None:
        return code in ANY_SERVICE_TRANSIENT
    return code in TRANSIENT_CODES.get(service, COMMON_TRANSIENT)


def classify(exc: BaseException, service: str | None = None) -> str:
    """TRANSIENT, RECORD or RAISE for `exc` (see the module docstring)."""
    if isinstance(exc, TransientAwsError) or isinstance(exc, TRANSIENT_EXCEPTIONS):
        return TRANSIENT
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in QUOTA_CODES.get(service or "", ()):
            return RECORD
        if transient_code(code, service) or _status(exc) in TRANSIENT_STATUS:
            return TRANSIENT
        return RECORD
    return RAISE


def is_transient(exc: BaseException, service: str | None = None) -> bool:
    return classify(exc, service) == TRANSIENT


def recorded(exc: BaseException, what: str, service: str | None = None) -> str:
    """Apply the policy to `exc`, caught while doing `what`: returns the AWS error code to record as the step's
    failure; raises TransientAwsError for a transient error; re-raises anything that is not an AWS error."""
    verdict = classify(exc, service)
    if verdict == RECORD:
        return error_code(exc)
    if verdict == TRANSIENT and not isinstance(exc, TransientAwsError):
        raise TransientAwsError(f"{what}: {error_code(exc)}") from exc
    raise exc


def best_effort(exc: BaseException) -> bool:
    """For bookkeeping that must never fail containment (scope capture, the live timeline): True for any AWS
    error, transient or not, and for a typed error (a role that cannot be assumed); False for a bug."""
    return classify(exc) != RAISE or isinstance(exc, ResponderError)
