"""AWS clients, created lazily and cached per container; sessions in other accounts via sts:AssumeRole.

Nothing is created at import time (cold start stays lean, and the local runtime needs no import tricks).
All clients share one botocore Config: standard retry mode, bounded timeouts.

Assumed-role credentials outlive every invocation: they are requested for `SESSION_SECONDS` (an hour) and
refreshed by botocore before they expire (`RefreshableCredentials`: from 15 minutes before expiry, forced at 10), so
a call made at any point of a 14-minute evidence invocation - or of a later invocation reusing the container - is
signed with credentials that have at least 10 minutes left. One AssumeRole per role and incident, then one per
refresh.
"""
from __future__ import annotations

import os
import re
import threading
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from botocore.loaders import Loader

from responder.errors import AccountAccessError, recorded

CONFIG = Config(retries={"max_attempts": 6, "mode": "standard"}, connect_timeout=5, read_timeout=30)
# AssumeRole called with the function's own role credentials is role chaining, which IAM caps at one hour
# (a longer DurationSeconds fails); the member and forensics roles allow one hour (MaxSessionDuration, see
# stacks/constructs/access_role.py).
SESSION_SECONDS = 3600
LEAN_MODELS = Path(__file__).resolve().parent / "models"  # written by aws/service_models.py
_lock = threading.Lock()
_clients: dict[tuple, Any] = {}
_roles: dict[tuple, RefreshableCredentials] = {}
_base: list[botocore.session.Session] = []


def reset() -> None:
    """Forget every cached client and session (the local runtime calls this between deployments)."""
    with _lock:
        _clients.clear()
        _roles.clear()
        _base.clear()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class _Services:
    """The services a loader knows for one data type, as botocore's `list_available_services` answers it, but
    `service in` looks only in that service's own folders: botocore walks all ~400 service folders of its data
    (once per data type: service model, endpoint rules) just to check that the one asked for exists."""

    def __init__(self, loader: Loader, type_name: str):
        self._loader, self._type = loader, type_name
        self._known: dict[str, bool] = {}

    def __contains__(self, service: object) -> bool:
        if not isinstance(service, str):
            return False
        if service not in self._known:
            self._known[service] = any(
                self._loader.file_loader.exists(os.path.join(folder, version, self._type))
                for folder in self._loader._potential_locations(service, must_exist=True, is_dir=True)
                for version in os.listdir(folder))
        return self._known[service]

    def __iter__(self):  # only for botocore's UnknownServiceError message (and listings): the full walk
        return iter(Loader.list_available_services(self._loader, self._type))


class _LeanLoader(Loader):
    """botocore's loader with the lean data first (aws/service_models.py) and no walk of every service folder."""

    def list_available_services(self, type_name: str) -> _Services:  # type: ignore[override]
        return _Services(self, type_name)


def _base_session() -> botocore.session.Session:
    """The one session every client is made from: botocore's own (boto3's adds only its S3 transfer methods and
    resource handlers, which the responder does not use). Its loader reads the lean service models and endpoint
    data first (aws/service_models.py): a cold start parses kilobytes of model instead of megabytes."""
    if not _base:
        core = botocore.session.Session()
        core.register_component("data_loader", _LeanLoader(extra_search_paths=[str(LEAN_MODELS)]))
        _base.append(core)
    return _base[0]


def client(service: str, region: str | None = None) -> Any:
    """A client in the responder's own account (the function's execution role)."""
    key = ("self", service, region)
    with _lock:
        if key not in _clients:
            _clients[key] = _base_session().create_client(service, region_name=region, config=CONFIG)
        return _clients[key]


def session_name(label: str) -> str:
    """A RoleSessionName (2-64 chars of [\\w+=,.@-]) that names the incident in CloudTrail."""
    cleaned = re.sub(r"[^\w+=,.@-]", "-", label)[:60]
    return f"ir-{cleaned}" if cleaned else "ir-responder"


def _assume(role_arn: str, name: str, region: str, external_id: str) -> dict[str, str]:
    """One sts:AssumeRole, in the shape botocore's refresh expects. Transient errors raise TransientAwsError, a
    refusal AccountAccessError (also when it happens at a refresh, inside a later call)."""
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": name, "DurationSeconds": SESSION_SECONDS}
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
    return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"], "expiry_time": creds["Expiration"].isoformat()}


def role_credentials(role_arn: str, *, region: str, label: str, external_id: str = "") -> RefreshableCredentials:
    """The role's credentials, assumed now (a refusal raises here, before any call) and refreshed before they
    expire. Credentials work in every region: one session per role and incident."""
    name = session_name(label)
    key = (role_arn, name)
    with _lock:
        cached = _roles.get(key)
    if cached is not None:
        return cached
    fetch = partial(_assume, role_arn, name, region, external_id)
    first = fetch()
    creds = RefreshableCredentials(
        first["access_key"], first["secret_key"], first["token"], datetime.fromisoformat(first["expiry_time"]),
        refresh_using=fetch, method="sts-assume-role", time_fetcher=lambda: _now())
    with _lock:
        return _roles.setdefault(key, creds)


def role_arn(partition: str, account: str, role_name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def _role_client(service: str, role: str, *, region: str, label: str, external_id: str) -> Any:
    """A client with the role's refreshing credentials, made from the one base session: service models are parsed
    once per container, not once per assumed role (a new session would re-read them)."""
    creds = role_credentials(role, region=region, label=label, external_id=external_id)
    key = ("role", role, session_name(label), service, region)
    with _lock:
        if key in _clients:
            return _clients[key]
    current = creds.get_frozen_credentials()  # may refresh (AssumeRole): outside the lock
    with _lock:
        if key not in _clients:
            made = _base_session().create_client(
                service, region_name=region, config=CONFIG, aws_access_key_id=current.access_key,
                aws_secret_access_key=current.secret_key, aws_session_token=current.token)
            # botocore takes only static keys here; its signer reads its credentials object on every request, so
            # it is given the refreshing one (tests/integration/test_clients.py proves the refresh end to end)
            made._request_signer._credentials = creds
            _clients[key] = made
        return _clients[key]


def member_client(service: str, *, account: str, region: str, partition: str, label: str, settings: Any) -> Any:
    """A client acting in a workload account through the member role (same code path in one account)."""
    arn = role_arn(partition, account, settings.member_role_name)
    return _role_client(service, arn, region=region, label=label, external_id=settings.external_id)


def member_read_client(service: str, *, account: str, region: str, partition: str, label: str,
                       settings: Any) -> Any:
    """A client reading in a workload account through the member role's read-only twin (``<member role>-read``:
    Describe calls only, trusted by Triage alone), never the member role itself."""
    arn = role_arn(partition, account, settings.member_role_name + "-read")
    return _role_client(service, arn, region=region, label=label, external_id=settings.external_id)


def member_release_client(service: str, *, account: str, region: str, partition: str, label: str,
                          settings: Any) -> Any:
    """A client undoing containment in a workload account through the release role (``<member role>-release``:
    only the undo actions, trusted by the release function alone), never the member role itself."""
    arn = role_arn(partition, account, settings.member_role_name + "-release")
    return _role_client(service, arn, region=region, label=label, external_id=settings.external_id)


def forensics_client(service: str, *, region: str, label: str, settings: Any) -> Any:
    """A client acting in the forensics account through the forensics role."""
    return _role_client(
        service, settings.forensics_role_arn, region=region, label=label, external_id=settings.external_id
    )


def signer_client(service: str, *, region: str, label: str, settings: Any) -> Any:
    """A client acting in the forensics account through the custody signer role: the only principal the custody
    key lets sign, trusted only by Finalize's role (the role that writes evidence cannot sign it)."""
    return _role_client(
        service, settings.custody_signer_role_arn, region=region, label=label, external_id=settings.external_id
    )


class Clients:
    """The clients of one task invocation, made the same way by every handler: `own(service)` with the function's
    own role; `member(service, region)` in the incident's account through the member role (region None: the
    incident's); `forensics(service, region)` in the forensics account through the forensics role (region None: the
    forensics region, `Settings.forensics_region`, where the evidence bucket, the custody key and every forensics
    snapshot copy live). Role sessions are named after the
    incident (`label`: another incident's name, for Finalize before it has read the incident).

    `signer(service)` in the forensics account through the custody signer role (Finalize only).

    A handler passes `member_client` (or `member_read_client`) / `forensics_client` / `signer_client` only if its
    task acts there: that import is what gives its function role sts:AssumeRole on those roles (stacks/tasks.py),
    and without it the method refuses."""

    def __init__(self, settings: Any, incident: dict | None = None, *, member: Any = None, forensics: Any = None,
                 signer: Any = None):
        self.settings = settings
        self.incident = incident or {}
        self._member, self._forensics, self._signer = member, forensics, signer

    def of(self, incident: dict) -> "Clients":
        """The same clients for `incident` (Triage: known only once the input is normalized)."""
        return Clients(self.settings, incident, member=self._member, forensics=self._forensics, signer=self._signer)

    @property
    def forensics_region(self) -> str | None:
        """The forensics account's region (None: the function's own)."""
        return getattr(self.settings, "forensics_region", "") or None

    def own(self, service: str) -> Any:
        return client(service)

    def member(self, service: str, region: str | None = None) -> Any:
        if self._member is None:
            raise RuntimeError("this task does not act in member accounts (no member_client given)")
        incident = self.incident
        return self._member(service, account=incident["accountId"], region=region or incident["region"],
                            partition=incident["partition"], label=incident["incidentId"], settings=self.settings)

    def forensics(self, service: str, region: str | None = None, *, label: str | None = None) -> Any:
        if self._forensics is None:
            raise RuntimeError("this task does not act in the forensics account (no forensics_client given)")
        return self._forensics(service, region=region or self.forensics_region,
                               label=label or self.incident["incidentId"], settings=self.settings)

    def signer(self, service: str, region: str | None = None, *, label: str | None = None) -> Any:
        if self._signer is None:
            raise RuntimeError("this task does not sign manifests (no signer_client given)")
        return self._signer(service, region=region or self.forensics_region, label=label or self.incident["incidentId"],
                            settings=self.settings)
