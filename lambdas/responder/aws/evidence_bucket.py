"""Write-once evidence in the forensics account's evidence bucket, through the forensics role.

``PutObject`` with ``If-None-Match: *`` never replaces an object: a second run (or a Step Functions retry) cannot
overwrite what an earlier run captured before anything changed; S3 answers ``PreconditionFailed`` and the journal
records ``unchanged``. Each put carries its SHA-256 (S3 rejects a body that does not match; Object Lock accepts the
put). The bucket's default encryption (the forensics KMS key) applies; ``ExpectedBucketOwner`` makes sure the
bucket is the forensics account's. (``responder.aws.s3`` writes the responder's other documents.)
"""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from responder.journal import Journal

# s3:PutObject under the bucket's default SSE-KMS encryption also needs kms:GenerateDataKey on the forensics key.
FORENSICS_ACTIONS = ("s3:PutObject", "kms:GenerateDataKey")


class WriteOnceBucket:
    def __init__(self, client: Any, journal: Journal, bucket: str, *, owner: str = ""):
        self._c = client
        self._j = journal
        self.bucket = bucket
        self._owner = owner

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_json_once(self, key: str, document: Any) -> str:
        """Write `document` as JSON at `key` unless an object is already there. Returns `sha256:<hex>` of the
        body this run would write (the stored one may be an earlier run's)."""
        body = json.dumps(document, default=str, sort_keys=True, indent=1).encode()
        sha = hashlib.sha256(body)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": "application/json",
                                  "IfNoneMatch": "*"}
        if self._owner:
            params["ExpectedBucketOwner"] = self._owner
        if self._j.dry_run:  # plan without the body: a plan travels in the execution output
            self._j.note("planned", self.uri(key), api="s3:PutObject", params=params, bytes=len(body))
        else:
            self._j.call(self._c, "put_object", target=self.uri(key), accept=("PreconditionFailed",), Body=body,
                         ChecksumAlgorithm="SHA256", ChecksumSHA256=base64.b64encode(sha.digest()).decode(),
                         **params)
        return "sha256:" + sha.hexdigest()
