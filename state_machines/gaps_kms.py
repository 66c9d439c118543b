"""KMS gap: moto's grants have no ``CreationDate`` and no ``IssuingAccount``.

AWS's ListGrants returns both for every grant (KMS API Reference, GrantListEntry: "CreationDate - The date and
time when the grant was created", "IssuingAccount - The Amazon Web Services account under which the grant was
issued", as ``arn:aws:iam::<account>:root``). The responder checks a grant the attacker created against its
CreationDate (responder.pivots), so the in-memory grants carry them: the time CreateGrant was served, and the key's
account.
"""
from __future__ import annotations

from contextlib import ExitStack
from datetime import datetime, timezone
from unittest import mock


def install(stack: ExitStack) -> None:
    from moto.kms.models import Grant, Key

    original_init, original_json, original_add = Grant.__init__, Grant.to_json, Key.add_grant

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.creation_date = datetime.now(timezone.utc).timestamp()
        self.issuing_account = None

    def to_json(self):
        out = original_json(self)
        out["CreationDate"] = getattr(self, "creation_date", None)
        if getattr(self, "issuing_account", None):
            out["IssuingAccount"] = self.issuing_account
        return {k: v for k, v in out.items() if v is not None}

    def add_grant(self, *args, **kwargs):
        grant = original_add(self, *args, **kwargs)
        partition = self.arn.split(":")[1]
        grant.issuing_account = f"arn:{partition}:iam::{self.account_id}:root"
        return grant

    stack.enter_context(mock.patch.object(Grant, "__init__", init))
    stack.enter_context(mock.patch.object(Grant, "to_json", to_json))
    stack.enter_context(mock.patch.object(Key, "add_grant", add_grant))
