"""KMS adapter for the chain of custody: sign a manifest digest with the forensics account's asymmetric custody key
(the custody signer role is the only principal its key policy lets sign; only Finalize assumes it), verify a
signature."""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from responder.custody import MESSAGE_TYPE, SIGNING_ALGORITHM  # the custody scheme decides how
from responder.errors import error_code

# Finalize signs through the custody signer role (responder.aws.clients.signer_client), never through the forensics
# role that writes the evidence; the CLI verifies with a person's credentials (kms:Verify).
SIGNER_ACTIONS = ("kms:Sign",)


class CustodyKey:
    def __init__(self, client: Any, key_id: str):
        self._c = client
        self.key_id = key_id

    def sign(self, digest: bytes) -> tuple[str, bytes]:
        """(the key's ARN as KMS reports it, the signature) for a SHA-256 digest."""
        response = self._c.sign(KeyId=self.key_id, Message=digest, MessageType=MESSAGE_TYPE,
                                SigningAlgorithm=SIGNING_ALGORITHM)
        return response["KeyId"], response["Signature"]

    def verify(self, digest: bytes, signature: bytes, *, key_id: str | None = None) -> bool:
        """Does `signature` sign `digest` under the key? KMS answers an invalid signature with
        KMSInvalidSignatureException (AWS) or SignatureValid false: both are False here."""
        try:
            response = self._c.verify(KeyId=key_id or self.key_id, Message=digest, MessageType=MESSAGE_TYPE,
                                      Signature=signature, SigningAlgorithm=SIGNING_ALGORITHM)
        except ClientError as exc:
            if error_code(exc) == "KMSInvalidSignatureException":
                return False
            raise
        return bool(response.get("SignatureValid"))


# -- grants and key policies in a member account (responder.pivots, responder.rotation) ------------------------
# Called directly (not through a service) on the member account's keys: the member role's policy scopes them to
# that account's keys (stacks.policies). A key whose key policy does not let the account's IAM policies decide
# answers AccessDenied: the caller records a manual step.
MEMBER_ACTIONS = ("kms:ListGrants", "kms:RevokeGrant", "kms:ListKeys", "kms:GetKeyPolicy")
GRANT_PAGE = 100  # ListGrants Limit: 1-100
KEY_PAGE = 100  # ListKeys Limit: 1-1000


class KeyGrants:
    """One Region's KMS in a member account. Reads return plain data; the revoke goes through the Journal."""

    def __init__(self, client: Any, journal: Any):
        self._c = client
        self._j = journal

    def grant(self, key_arn: str, grant_id: str) -> dict | None:
        """The grant `grant_id` of the key (ListGrants with GrantId), or None when the key has no such grant
        (revoked or retired). NotFoundException (no such key) is None too; other errors propagate."""
        try:
            grants = self._c.list_grants(KeyId=key_arn, GrantId=grant_id, Limit=GRANT_PAGE).get("Grants") or []
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise
        return next((g for g in grants if g.get("GrantId") == grant_id), None)

    def grants(self, key_id: str, *, pages: int = 1) -> tuple[list[dict], bool]:
        """(the key's grants, truncated) reading at most `pages` pages of `GRANT_PAGE`."""
        found: list[dict] = []
        params: dict[str, Any] = {"KeyId": key_id, "Limit": GRANT_PAGE}
        for _ in range(pages):
            page = self._c.list_grants(**params)
            found += page.get("Grants") or []
            if not page.get("Truncated") or not page.get("NextMarker"):
                return found, False
            params["Marker"] = page["NextMarker"]
        return found, True

    def keys(self, *, limit: int) -> tuple[list[str], bool]:
        """(up to `limit` key ARNs of the Region, truncated)."""
        found: list[str] = []
        params: dict[str, Any] = {"Limit": min(KEY_PAGE, limit)}
        while len(found) < limit:
            page = self._c.list_keys(**params)
            found += [k["KeyArn"] for k in page.get("Keys") or [] if k.get("KeyArn")]
            if not page.get("Truncated") or not page.get("NextMarker"):
                return found[:limit], len(found) > limit
            params["Marker"] = page["NextMarker"]
        return found[:limit], True

    def key_policy(self, key_id: str) -> str:
        return self._c.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]

    def revoke_grant(self, key_arn: str, grant_id: str, *, target: str) -> None:
        """RevokeGrant. A grant already gone (NotFoundException: revoked by an earlier run, whose revocation ListGrants
        may not show yet - KMS is eventually consistent, usually under five minutes) is recorded as unchanged."""
        self._j.call(self._c, "revoke_grant", target=target, accept=("NotFoundException",), KeyId=key_arn,
                     GrantId=grant_id)
