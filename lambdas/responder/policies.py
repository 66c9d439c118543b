"""Policy documents the responder writes, as data (never built by string concatenation)."""
from __future__ import annotations

from typing import Any


def revoke_older_sessions(cutoff: str) -> dict[str, Any]:
    """The document of AWS's "Revoke active sessions": deny everything to credentials issued before `cutoff`
    (UTC, ISO 8601). Long-term access keys carry no aws:TokenIssueTime and are not affected by it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
            }
        ],
    }


def revoke_cutoff(document: dict[str, Any] | None) -> str | None:
    """The cut-off of an existing revoke policy written by us or by the console, else None."""
    if not document:
        return None
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    cutoffs = [
        s.get("Condition", {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
        for s in statements
        if isinstance(s, dict) and s.get("Effect") == "Deny"
    ]
    cutoffs = [c for c in cutoffs if isinstance(c, str)]
    return max(cutoffs) if cutoffs else None


def covers(existing: str | None, wanted: str) -> bool:
    """True if a revoke policy with cut-off `existing` already revokes everything `wanted` would.
    Both are ISO 8601 UTC strings of one format, so they compare as strings; never move a cut-off back."""
    return existing is not None and _norm(existing) >= _norm(wanted)


def _norm(ts: str) -> str:
    # "2024-06-02T01:58:00Z", "2024-06-02T01:58:00.000Z" and "+00:00" compare alike to the second
    return ts.replace("+00:00", "Z").split(".")[0].rstrip("Z")
