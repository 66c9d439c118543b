"""boto3 clients, created lazily and cached per container; sessions in other accounts via sts:AssumeRole.

Nothing is created at import time (cold start stays lean, and the local runtime needs no import tricks).
All clients share one botocore Config: standard retry mode, bounded timeouts.
"""
from __future__ import annotations

import re
import threading
import time
from typing import Any

import boto3
from botocore.config import Config
from responder.errors import AccountAccessError, recorded

CONFIG = Config(retries={"max_attempts": 6, "mode": "standard"}, connect_timeout=5, read_timeout=30)
_SESSION_SECONDS = 900
_REFRESH_MARGIN = 120
_lock = threading.Lock()
_clients: dict[tuple, Any] = {}
_sessions: dict[tuple, tuple[dict[str, str], float]] = {}
_base: list[boto3.session.Session] = []


def reset() -> None:
    """Forget every cached client and session (the local runtime calls this between deployments)."""
    with _lock:
        _clients.clear()
        _sessions.clear()
        _base.clear()


def _base_session() -> boto3.session.Session:
    if not _base:
        _base.append(boto3.session.Session())
    return _base[0]


def client(service: str, region: str | None = None) -> Any:
    """A client in the responder's own account (the function's execution role)."""
    key = ("self", service, region)
    with _lock:
        if key not in _clients:
            _clients[key] = _base_session().client(service, region_name=region, config=CONFIG)
        return _clients[key]


def session_name(label: str) -> str:
    """A RoleSessionName (2-64 chars of [\\w+=,.@-]) that names the incident in CloudTrail."""
    cleaned = re.sub(r"[^\w+=,.@-]", "-", label)[:60]
    return f"ir-{cleaned}" if cleaned else "ir-responder"


def assumed_credentials(role_arn: str, *, region: str, label: str, external_id: str = "") -> dict[str, str]:
    """Temporary credentials of `role_arn`, cached until shortly before they expire."""
    name = session_name(label)
    key = (role_arn, name)  # credentials work in every region: one AssumeRole per role and incident
    now = time.time()
    with _lock:
        cached = _sessions.get(key)
        if cached and cached[1] - _REFRESH_MARGIN > now:
            return cached[0]
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": name, "DurationSeconds": _SESSION_SECONDS}
    if external_id:
        params["ExternalId"] = external_id
    try:
        creds = client("sts", region).assume_role(**params)["Credentials"]
    except Exception as exc:
        code = recorded(exc, f"sts:AssumeRole {role_arn}", "sts")  # transient: retried; a bug: raised
        raise AccountAccessError(
            f"cannot assume {role_arn} ({code}): is the stack that creates it deployed in that "
            f"account, and does its trust policy name this responder?"
        ) from exc
    found = {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }
    with _lock:
        _sessions[key] = (found, now + _SESSION_SECONDS)
    return found


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def _role_client(service: str, role: str, *, region: str, label: str, external_id: str) -> Any:
    """A client with the role's credentials, made from the one base session: service models are parsed once
    per container, not once per assumed role (a new boto3 Session would re-read them)."""
    creds = assumed_credentials(role, region=region, label=label, external_id=external_id)
    key = ("role", creds["aws_access_key_id"], service, region)
    with _lock:
        if key not in _clients:
            _clients[key] = _base_session().client(service, region_name=region, config=CONFIG, **creds)
        return _clients[key]


def member_client(service: str, *, account: str, region: str, partition: str, label: str, settings: Any) -> Any:
    """A client acting in a workload account through the member role (same code path in one account)."""
    arn = role_arn(partition, account, settings.member_role_name)
    return _role_client(service, arn, region=region, label=label, external_id=settings.external_id)


def forensics_client(service: str, *, region: str, label: str, settings: Any) -> Any:
    """A client acting in the forensics account through the forensics role."""
    return _role_client(
        service, settings.forensics_role_arn, region=region, label=label, external_id=settings.external_id
    )
