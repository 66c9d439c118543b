"""Protected principals and instances: never contained, whatever the finding says. Pure decisions.

A target is protected when any of these holds:

* it is one of the responder's own roles: every role whose name starts with ``ir-responder`` (the stacks name
  the responder's function roles, the member role and the forensics role that way);
* its ARN matches one of the configured patterns (``IR_PROTECTED_PRINCIPALS``, shell-style wildcards), e.g. a
  break-glass list ``arn:aws:iam::*:role/BreakGlass*,arn:aws:iam::*:user/emergency-*``;
* it carries the protection tag (``IR_PROTECTED_TAG``, default ``ir:protected``) with value ``true``.

Fail closed: if the tags could not be read, or the deployment's protection configuration is missing or unusable
(``Settings.protection_config_error``), the caller must not contain the target (see `UNVERIFIABLE`). The
responder's own roles are recognised even then.
"""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Mapping

from responder.settings import Settings

OWN_ROLE_PREFIX = "ir-responder"
UNVERIFIABLE = "protection could not be verified"


def own_role_patterns(settings: Settings) -> tuple[str, ...]:
    names = {f"{OWN_ROLE_PREFIX}*", settings.member_role_name}
    if settings.forensics_role_arn:
        names.add(settings.forensics_role_arn.rsplit("/", 1)[-1])
    return tuple(f"arn:*:iam::*:role/{n}" for n in sorted(names)) + tuple(
        f"arn:*:iam::*:role/*/{n}" for n in sorted(names)
    )


def protected_reason(arn: str, tags: Mapping[str, str] | None, settings: Settings) -> str | None:
    """Why `arn` must not be contained, or None. `tags=None` means the tags could not be read: protected."""
    for pattern in own_role_patterns(settings):
        if fnmatchcase(arn, pattern):
            return f"{arn} is one of the responder's own roles"
    if settings.protection_config_error:
        return UNVERIFIABLE
    for pattern in settings.protected_principals:
        if fnmatchcase(arn, pattern):
            return f"{arn} matches the protected pattern {pattern}"
    if tags is None:
        return UNVERIFIABLE
    if str(tags.get(settings.protected_tag, "")).strip().lower() == "true":
        return f"{arn} is tagged {settings.protected_tag}=true"
    return None
