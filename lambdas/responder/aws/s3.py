"""S3 adapter: the responder's JSON documents in the forensics evidence bucket (manifests and their signatures,
captured CloudTrail activity). Manifests are written once (`put_json_once`: ``If-None-Match: *``, S3 conditional
writes - S3 answers 412 ``PreconditionFailed`` when the key exists, 409 ``ConditionalRequestConflict`` when another
conditional write to it is under way); a CloudTrail capture of a later attempt adds a version.

Objects are written through the forensics role. Each put carries its SHA-256 (`ChecksumSHA256`), so S3 rejects
a body that does not match the digest the responder records, and the bucket's Object Lock accepts the put.
The bucket's default encryption (the forensics KMS key) applies; nothing is ever made public.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any

from botocore.exceptions import ClientError

from responder.errors import error_code
from responder.journal import Journal

# The answers of a conditional write whose key is taken (S3 User Guide, "How to prevent object overwrites with
# conditional writes": 412 when it exists, 409 when a concurrent write or delete won): the name is not ours.
NAME_TAKEN = ("PreconditionFailed", "ConditionalRequestConflict")

# s3:PutObject under the bucket's default SSE-KMS encryption also needs kms:GenerateDataKey on the forensics key;
# s3:GetObject (Finalize: the principal's CloudTrail captures the report is built from, and the report read back) is
# granted only on those keys (stacks.policies.forensics_policy, READ_KEYS) and needs kms:Decrypt.
FORENSICS_ACTIONS = ("s3:PutObject", "s3:GetObject", "kms:GenerateDataKey", "kms:Decrypt")
# The only objects the forensics role reads: CloudTrail captures (responder.scope) and the incident reports.
READ_KEYS = ("incidents/*/cloudtrail/*", "incidents/*/report-*")


def digest(body: bytes) -> str:
    """`sha256:<hex>`, the form the evidence tags use too."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


class EvidenceObjects:
    def __init__(self, client: Any, bucket: str):
        self._c = client
        self.bucket = bucket

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _params(self, key: str, body: bytes | None, content_type: str = "application/json") -> dict[str, Any]:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        if body is not None:
            params["Body"] = body
            params["ChecksumAlgorithm"] = "SHA256"
            params["ChecksumSHA256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
        return params

    def put_json(self, key: str, body: bytes) -> dict[str, Any]:
        """Write the responder's own record (manifest). Not a change to a workload account: not journaled."""
        response = self._c.put_object(**self._params(key, body))
        return {"bucket": self.bucket, "key": key, "uri": self.uri(key), "sha256": digest(body),
                "versionId": response.get("VersionId"), "bytes": len(body)}

    def put_json_once(self, key: str, body: bytes, content_type: str = "application/json") -> dict[str, Any] | None:
        """Write `body` at `key` only if nothing is there (``If-None-Match: *``): None when the key is taken.
        (The incident report's page and CSV are written the same way, with their own content type.)"""
        try:
            response = self._c.put_object(IfNoneMatch="*", **self._params(key, body, content_type))
        except ClientError as exc:
            if error_code(exc) in NAME_TAKEN:
                return None
            raise
        return {"bucket": self.bucket, "key": key, "uri": self.uri(key), "sha256": digest(body),
                "versionId": response.get("VersionId"), "bytes": len(body)}

    def get_bytes(self, key: str, version_id: str | None = None) -> bytes:
        """Read one object back (a CloudTrail capture, or a report just written)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        return self._c.get_object(**params)["Body"].read()

    def put_evidence(self, journal: Journal, key: str, body: bytes) -> dict[str, Any]:
        """Write an evidence document through the journal (timeline entry; planned, not written, in a dry run:
        the plan names bucket and key, not the body that would have been captured)."""
        found = {"bucket": self.bucket, "key": key, "uri": self.uri(key)}
        if journal.dry_run:
            journal.call(self._c, "put_object", target=self.uri(key), **self._params(key, None))
            return found
        response = journal.call(self._c, "put_object", target=self.uri(key), **self._params(key, body))
        return {**found, "sha256": digest(body), "versionId": (response or {}).get("VersionId"), "bytes": len(body)}
