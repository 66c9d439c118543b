"""Secrets Manager adapter (the responder's own account): where a release puts a restored console password.

Only this adapter ever holds the password: the journal records the call, never its parameters (a dry run plans it
with a placeholder, responder.release), and the result carries the secret's ARN alone. The secret is encrypted
with the account's default Secrets Manager key (``aws/secretsmanager``) and tagged with the incident.
"""
from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from responder.errors import error_code
from responder.journal import Journal

# Scoped to the secrets named RELEASE_SECRET_PREFIX... (stacks/policies.py function_policy).
RESPONDER_ACTIONS = ("secretsmanager:CreateSecret", "secretsmanager:PutSecretValue", "secretsmanager:TagResource")


class Secrets:
    def __init__(self, client: Any, journal: Journal):
        self._c = client
        self._j = journal

    def store(self, name: str, value: str, *, tags: dict[str, str], description: str) -> str | None:
        """Create the secret `name` holding `value` (tagged at creation), or put `value` as its new current version
        if it exists (a release run again). Returns its ARN (None when planned)."""
        tag_list = [{"Key": k, "Value": v} for k, v in sorted(tags.items())]
        try:
            response = self._j.call(self._c, "create_secret", target=name, Name=name, SecretString=value,
                                    Description=description, Tags=tag_list)
        except ClientError as exc:
            if error_code(exc) != "ResourceExistsException":
                raise
            response = self._j.call(self._c, "put_secret_value", target=name, SecretId=name, SecretString=value)
        return (response or {}).get("ARN")
