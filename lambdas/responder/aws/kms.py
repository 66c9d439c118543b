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
