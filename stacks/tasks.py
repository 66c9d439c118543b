"""What each Lambda function's task reaches, computed from the code (no list kept by hand here).

Dependency-free (no CDK import, the Lambda package is read, not imported): the stacks and the local runtime give
each function a role of its own from this, so a function holds only what its task does:

* the responder actions (``RESPONDER_ACTIONS`` of every adapter module its handler reaches through imports,
  `responder.permissions` for the convention), on the responder's own resources;
* `sts:AssumeRole` on the member roles only when the handler's code path imports ``member_client`` from
  `responder.aws.clients`, on their read-only twins only when it imports ``member_read_client``, on the
  release twins only when it imports ``member_release_client``, on the forensics role only when it imports
  ``forensics_client``, and on the custody signer role only when it imports
  ``signer_client`` (Finalize).

A new adapter, a new declaration or a new import flows into the roles at the next synth; the member and forensics
roles then trust exactly the function roles that may assume them (`stacks.policies.responder_trust`).
"""
from __future__ import annotations

import ast
import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from stacks.catalog import FUNCTIONS, LAMBDA_ROOT, FunctionSpec

CLIENTS_MODULE = "responder.aws.clients"
MEMBER_CLIENT = "member_client"
MEMBER_READ_CLIENT = "member_read_client"
MEMBER_RELEASE_CLIENT = "member_release_client"
FORENSICS_CLIENT = "forensics_client"
SIGNER_CLIENT = "signer_client"


@dataclass(frozen=True)
class TaskAccess:
    key: str
    modules: tuple[str, ...]  # every module of the Lambda package the handler reaches
    responder_actions: tuple[str, ...]
    member: bool  # may assume the member role of every member account
    forensics: bool  # may assume the forensics role
    signer: bool = False  # may assume the custody signer role (signs manifests)
    trail_actions: tuple[str, ...] = ()  # the trail queries' actions (granted when the deployment names a table)
    member_read: bool = False  # may assume the read-only member role of every member account
    member_release: bool = False  # may assume the release member role of every member account (undo only)


def _path(module: str) -> Path | None:
    base = LAMBDA_ROOT / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(module: str) -> tuple[set[str], set[str]]:
    """(modules of the Lambda package that `module` imports, names it imports from responder.aws.clients)."""
    path = _path(module)
    if path is None:
        return set(), set()
    found: set[str] = set()
    client_names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
            if node.module == CLIENTS_MODULE:
                client_names.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] in ("responder", "handlers") and _path(m)}, client_names


@lru_cache(maxsize=None)
def task_access(spec: FunctionSpec) -> TaskAccess:
    handler_module = spec.handler.rsplit(".", 1)[0]
    seen, todo, client_names = {handler_module}, [handler_module], set()
    while todo:
        modules, names = _imports(todo.pop())
        client_names |= names
        for module in modules - seen:
            seen.add(module)
            todo.append(module)
    from responder.permissions import TRAIL_ATTRS

    actions: set[str] = set()
    trail: set[str] = set()
    for module in sorted(seen):
        if module.startswith("responder.aws."):
            adapter = importlib.import_module(module)
            actions.update(getattr(adapter, "RESPONDER_ACTIONS", ()))
            for attr in TRAIL_ATTRS:
                trail.update(getattr(adapter, attr, ()))
    return TaskAccess(key=spec.key, modules=tuple(sorted(seen)), responder_actions=tuple(sorted(actions)),
                      member=MEMBER_CLIENT in client_names, forensics=FORENSICS_CLIENT in client_names,
                      signer=SIGNER_CLIENT in client_names, trail_actions=tuple(sorted(trail)),
                      member_read=MEMBER_READ_CLIENT in client_names,
                      member_release=MEMBER_RELEASE_CLIENT in client_names)


def all_access() -> dict[str, TaskAccess]:
    return {spec.key: task_access(spec) for spec in FUNCTIONS}


def member_tasks() -> tuple[FunctionSpec, ...]:
    return tuple(spec for spec in FUNCTIONS if task_access(spec).member)


def member_read_tasks() -> tuple[FunctionSpec, ...]:
    return tuple(spec for spec in FUNCTIONS if task_access(spec).member_read)


def member_release_tasks() -> tuple[FunctionSpec, ...]:
    return tuple(spec for spec in FUNCTIONS if task_access(spec).member_release)


def forensics_tasks() -> tuple[FunctionSpec, ...]:
    return tuple(spec for spec in FUNCTIONS if task_access(spec).forensics)


def signer_tasks() -> tuple[FunctionSpec, ...]:
    return tuple(spec for spec in FUNCTIONS if task_access(spec).signer)


def role_arns(partition: str, security_account: str, specs: tuple[FunctionSpec, ...]) -> list[str]:
    """The exact ARNs of these functions' roles (what the member and forensics roles trust)."""
    from stacks import names

    return sorted(names.role_arn(partition, security_account, names.function_role_name(s)) for s in specs)


def member_role_names(spec: FunctionSpec) -> tuple[str, ...]:
    """The member role names this function's task assumes (the member role, its read-only twin, the release twin)."""
    from stacks import names

    access = task_access(spec)
    return tuple(n for n, needed in ((names.MEMBER_ROLE_NAME, access.member),
                                     (names.MEMBER_READ_ROLE_NAME, access.member_read),
                                     (names.MEMBER_RELEASE_ROLE_NAME, access.member_release)) if needed)


def assume_role_arns(spec: FunctionSpec, *, partition: str, member_accounts: tuple[str, ...],
                     forensics_account: str) -> list[str]:
    """The roles this function may assume: the member roles if its task acts in members, the forensics role if
    it writes or copies evidence there, the custody signer role if it signs manifests."""
    from stacks import names

    access = task_access(spec)
    arns = [names.role_arn(partition, a, names.MEMBER_ROLE_NAME) for a in member_accounts] if access.member else []
    if access.member_read:
        arns += [names.role_arn(partition, a, names.MEMBER_READ_ROLE_NAME) for a in member_accounts]
    if access.member_release:
        arns += [names.role_arn(partition, a, names.MEMBER_RELEASE_ROLE_NAME) for a in member_accounts]
    if access.forensics:
        arns.append(names.role_arn(partition, forensics_account, names.FORENSICS_ROLE_NAME))
    if access.signer:
        arns.append(names.role_arn(partition, forensics_account, names.SIGNER_ROLE_NAME))
    return sorted(set(arns))
