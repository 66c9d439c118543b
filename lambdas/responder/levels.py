"""Containment levels: per account (or group of accounts), finding type and severity band, whether containment is
``automatic``, needs ``approval`` or is ``observe`` only. Pure: no AWS calls. The CDK context key
``containmentLevels`` holds the policy (README "Containment levels"); `parse` validates it at synth and again at
cold start, naming the bad key; `decide` picks the level of one incident.

Policy (every key optional)::

    {"default": "automatic",                      # level when no rule matches
     "approvalTimeoutSeconds": 3600,              # how long an approval may take (60 s to 30 days)
     "onTimeout": "stand_down",                   # "contain" or "stand_down" (record and notify, change nothing)
     "evidenceBeforeApproval": true,              # snapshot the instances' volumes while the approval is pending
     "accountGroups": {"production": ["111122223333", "444455556666"]},
     "rules": [                                   # the first rule that matches decides
        {"accounts": ["production"], "findingTypes": ["UnauthorizedAccess:IAMUser/*"],
         "minSeverity": 7, "maxSeverity": 10, "level": "approval",
         "approvalTimeoutSeconds": 900, "onTimeout": "contain"}]}

``accounts`` names account ids, group names or ``*`` (default: every account); ``findingTypes`` shell-style
patterns (case-sensitive, as GuardDuty spells them; default ``*``); ``minSeverity``/``maxSeverity`` an inclusive
band (default 0 to 10). A rule's ``approvalTimeoutSeconds``, ``onTimeout`` and ``evidenceBeforeApproval`` override
the policy's. Manual requests (a person asked) are ``automatic`` unless the request names its own ``level``.

``observe`` runs the response as a dry run: every change is planned, none is made. ``approval``: the state machine
waits for a person (``python -m cli approve|deny``) at most ``approvalTimeoutSeconds``; evidence that changes nothing
about the workload (the volumes' snapshot set) may be taken meanwhile; containment waits.
"""
from __future__ import annotations

import json
import math
import re
from fnmatch import fnmatchcase
from typing import Any

LEVELS = ("automatic", "approval", "observe")
ON_TIMEOUT = ("stand_down", "contain")
DEFAULT_TIMEOUT_SECONDS = 3600
MIN_TIMEOUT_SECONDS = 1  # the local runtime's tests; the CDK context requires SYNTH_MIN_TIMEOUT_SECONDS
SYNTH_MIN_TIMEOUT_SECONDS = 60
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600  # well inside a Standard workflow's year and the task token's lifetime
MAX_RULES = 100
POLICY_KEYS = {"default", "approvalTimeoutSeconds", "onTimeout", "evidenceBeforeApproval", "accountGroups", "rules"}
RULE_KEYS = {"accounts", "findingTypes", "minSeverity", "maxSeverity", "level", "approvalTimeoutSeconds", "onTimeout",
             "evidenceBeforeApproval", "name"}
_ACCOUNT = re.compile(r"[0-9]{12}", re.ASCII)
_GROUP = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", re.ASCII)


class LevelsError(ValueError):
    """The policy is invalid; `key` names the offending key (``containmentLevels.rules[1].level``)."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


def _timeout(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_TIMEOUT_SECONDS:
        raise LevelsError(key, f"whole seconds from {minimum} to {MAX_TIMEOUT_SECONDS}, got {value!r}")
    return value


def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise LevelsError(key, f"one of {', '.join(allowed)}, got {value!r}")
    return value


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise LevelsError(key, f"true or false, got {value!r}")
    return value


def _severity(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 10:
        raise LevelsError(key, f"a number from 0 to 10, got {value!r}")
    return float(value)


def _strings(value: Any, key: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise LevelsError(key, "a non-empty list of strings")
    return value


def parse(policy: Any, *, prefix: str = "containmentLevels", min_timeout: int = MIN_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The validated policy with every default filled in; `LevelsError` names the first bad key. `policy`: a dict,
    JSON text, or None/"" (no policy: every incident is automatic)."""
    if policy is None or policy == "":
        policy = {}
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as exc:
            raise LevelsError(prefix, f"not JSON: {exc}") from None
    if not isinstance(policy, dict):
        raise LevelsError(prefix, f"an object, got {type(policy).__name__}")
    unknown = sorted(set(policy) - POLICY_KEYS)
    if unknown:
        raise LevelsError(f"{prefix}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(POLICY_KEYS))})")
    out: dict[str, Any] = {
        "default": _choice(policy.get("default", "automatic"), f"{prefix}.default", LEVELS),
        "approvalTimeoutSeconds": _timeout(policy.get("approvalTimeoutSeconds", DEFAULT_TIMEOUT_SECONDS),
                                           f"{prefix}.approvalTimeoutSeconds", min_timeout),
        "onTimeout": _choice(policy.get("onTimeout", "stand_down"), f"{prefix}.onTimeout", ON_TIMEOUT),
        "evidenceBeforeApproval": _bool(policy.get("evidenceBeforeApproval", True),
                                        f"{prefix}.evidenceBeforeApproval"),
        "accountGroups": {},
        "rules": [],
    }
    groups = policy.get("accountGroups", {})
    if not isinstance(groups, dict):
        raise LevelsError(f"{prefix}.accountGroups", "an object of group name -> list of account ids")
    for name, accounts in groups.items():
        key = f"{prefix}.accountGroups.{name}"
        if not isinstance(name, str) or not _GROUP.fullmatch(name):
            raise LevelsError(key, "a group name is a letter then letters, digits, _ . - (at most 64)")
        for i, account in enumerate(_strings(accounts, key)):
            if not _ACCOUNT.fullmatch(account):
                raise LevelsError(f"{key}[{i}]", f"a 12-digit account id, got {account!r}")
        out["accountGroups"][name] = list(accounts)
    rules = policy.get("rules", [])
    if not isinstance(rules, list):
        raise LevelsError(f"{prefix}.rules", "a list of rules")
    if len(rules) > MAX_RULES:
        raise LevelsError(f"{prefix}.rules", f"at most {MAX_RULES} rules")
    for i, rule in enumerate(rules):
        out["rules"].append(_rule(rule, f"{prefix}.rules[{i}]", out, min_timeout))
    return out


def _rule(rule: Any, key: str, policy: dict[str, Any], min_timeout: int) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise LevelsError(key, "a rule is an object")
    unknown = sorted(set(rule) - RULE_KEYS)
    if unknown:
        raise LevelsError(f"{key}.{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    if "level" not in rule:
        raise LevelsError(f"{key}.level", "is required")
    accounts = _strings(rule.get("accounts", ["*"]), f"{key}.accounts")
    for j, account in enumerate(accounts):
        if account != "*" and not _ACCOUNT.fullmatch(account) and account not in policy["accountGroups"]:
            raise LevelsError(f"{key}.accounts[{j}]", f"{account!r} is neither an account id, '*' nor a group of "
                                                      "accountGroups")
    low = _severity(rule.get("minSeverity", 0), f"{key}.minSeverity")
    high = _severity(rule.get("maxSeverity", 10), f"{key}.maxSeverity")
    if low > high:
        raise LevelsError(f"{key}.minSeverity", f"{low} is above maxSeverity {high}")
    out = {
        "name": str(rule.get("name") or f"rules[{key.rsplit('[', 1)[-1]}")[:64],
        "accounts": accounts,
        "findingTypes": _strings(rule.get("findingTypes", ["*"]), f"{key}.findingTypes"),
        "minSeverity": low, "maxSeverity": high,
        "level": _choice(rule["level"], f"{key}.level", LEVELS),
    }
    if "approvalTimeoutSeconds" in rule:
        out["approvalTimeoutSeconds"] = _timeout(rule["approvalTimeoutSeconds"], f"{key}.approvalTimeoutSeconds",
                                                 min_timeout)
    if "onTimeout" in rule:
        out["onTimeout"] = _choice(rule["onTimeout"], f"{key}.onTimeout", ON_TIMEOUT)
    if "evidenceBeforeApproval" in rule:
        out["evidenceBeforeApproval"] = _bool(rule["evidenceBeforeApproval"], f"{key}.evidenceBeforeApproval")
    return out


def _matches(rule: dict[str, Any], policy: dict[str, Any], account: str, finding_type: str, severity: float) -> bool:
    accounts = set()
    for a in rule["accounts"]:
        accounts.update(policy["accountGroups"].get(a, [a]))
    if "*" not in accounts and account not in accounts:
        return False
    if not any(fnmatchcase(finding_type, p) for p in rule["findingTypes"]):
        return False
    return rule["minSeverity"] <= severity <= rule["maxSeverity"]


def decide(policy: dict[str, Any], incident: dict[str, Any], *, requested: str | None = None) -> dict[str, Any]:
    """The containment of `incident` under the (parsed) policy: ``{"level", "rule", "approvalTimeoutSeconds",
    "onTimeout", "evidenceBeforeApproval"}``. `requested`: the level a manual request names (it wins); a manual
    request without one is automatic (a person asked)."""
    rule: dict[str, Any] | None = None
    if requested:
        level, why = requested, "requested"
    elif incident.get("origin") == "manual":
        level, why = "automatic", "manual request"
    else:
        severity = incident.get("severity")
        severity = float(severity) if isinstance(severity, (int, float)) and not isinstance(severity, bool) else 10.0
        for candidate in policy["rules"]:
            if _matches(candidate, policy, str(incident.get("accountId") or ""),
                        str(incident.get("findingType") or ""), severity):
                rule = candidate
                break
        level, why = (rule["level"], rule["name"]) if rule else (policy["default"], "default")
    pick = (lambda k: (rule or {}).get(k, policy[k]))
    return {"level": level, "rule": why, "approvalTimeoutSeconds": pick("approvalTimeoutSeconds"),
            "onTimeout": pick("onTimeout"), "evidenceBeforeApproval": bool(pick("evidenceBeforeApproval"))}


def fail_closed(error: str) -> dict[str, Any]:
    """The containment when the deployment's policy is unusable: a person decides (approval; on timeout stand
    down), and the record says why."""
    return {"level": "approval", "rule": "unusable policy", "approvalTimeoutSeconds": DEFAULT_TIMEOUT_SECONDS,
            "onTimeout": "stand_down", "evidenceBeforeApproval": False, "policyError": error[:300]}
