"""GuardDuty S3 findings (resource type ``S3Bucket``): the actor is contained like an ``AccessKey`` finding's. Pure.

An S3 protection finding (``Discovery:S3/...``, ``Exfiltration:S3/...``, ``Policy:S3/...``, ``Impact:S3/...``) names
the bucket(s) in ``resource.s3BucketDetails`` and, when GuardDuty saw who made the calls, that principal in
``resource.accessKeyDetails`` (the same shape as in an AccessKey finding). That principal is the target: it goes to the
identity branch, which resolves it from AWS (the key's owner in IAM, the session's issuing role) exactly as for an
AccessKey finding, through the same protection gate and cut-off. The buckets are recorded with the incident
(``signal.buckets``), never changed: a bucket is evidence, and its policy is the on-call's decision.

A finding without a usable actor (no ``accessKeyDetails``, or a ``userType`` IAM cannot act on and that names nobody:
``AWSService``, ``Unknown``, empty) is ``not_handled`` with the reason; its buckets are still recorded.
"""
from __future__ import annotations

import re
from typing import Any

from responder.errors import InvalidInput

RESOURCE_TYPE = "S3Bucket"
MAX_BUCKETS = 10  # recorded per incident; GuardDuty lists the bucket(s) the calls touched
_A = re.ASCII
# S3 bucket naming rules: today 3-63 lower-case letters, digits, dots and hyphens; buckets created in us-east-1
# before March 2018 may still have up to 255 characters with upper-case letters and underscores (legacy names), and a
# finding on one must not be refused.
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}"
BUCKET_NAME = re.compile(_NAME, _A)
BUCKET_ARN = re.compile(r"arn:aws(-cn|-us-gov|-iso[a-z-]*)?:s3:::" + _NAME, _A)
# userType values that name a principal the identity branch can contain, or give manual steps for.
ACTORS = ("IAMUser", "AssumedRole", "Root", "FederatedUser")


def buckets(resource: dict, p: str) -> list[dict[str, str]]:
    """The buckets of ``s3BucketDetails`` ({name, arn}, each checked whole; at most MAX_BUCKETS, the rest counted by
    the caller). A name or ARN that is not one is InvalidInput naming the field."""
    found = resource.get("s3BucketDetails")
    if found is None:
        return []
    if not isinstance(found, list):
        raise InvalidInput(f"{p}s3BucketDetails", "must be a list")
    out: list[dict[str, str]] = []
    for i, bucket in enumerate(found[:MAX_BUCKETS]):
        f = f"{p}s3BucketDetails[{i}]"
        if not isinstance(bucket, dict):
            raise InvalidInput(f, "must be an object")
        entry: dict[str, str] = {}
        for key, pattern in (("name", BUCKET_NAME), ("arn", BUCKET_ARN)):
            value = bucket.get(key)
            if value in (None, ""):
                continue
            if not isinstance(value, str) or len(value) > 300 or not pattern.fullmatch(value):
                raise InvalidInput(f"{f}.{key}", f"{str(value)[:80]!r} is not an S3 bucket {key}")
            entry[key] = value
        if entry.get("arn") and entry.get("name") and not entry["arn"].endswith(f":::{entry['name']}"):
            raise InvalidInput(f"{f}.arn", f"{entry['arn']!r} does not name bucket {entry['name']!r}")
        if entry:
            out.append(entry)
    return out


def actor(resource: dict, p: str) -> tuple[dict | None, str]:
    """(the ``accessKeyDetails`` to contain, or None with why it is not usable)."""
    details = resource.get("accessKeyDetails")
    if details in (None, {}):
        return None, "the S3Bucket finding names no actor (no accessKeyDetails): nothing to contain automatically"
    if not isinstance(details, dict):
        raise InvalidInput(f"{p}accessKeyDetails", "must be an object")
    user_type = details.get("userType")
    if user_type in ACTORS:
        return details, ""
    if not isinstance(user_type, str) or not user_type:
        return None, "the S3Bucket finding's actor has no userType: nothing to contain automatically"
    return None, (f"the S3Bucket finding's actor is of type {user_type[:64]!r}, which names no principal the responder "
                  "can contain")
