"""Resolution and protection decisions of identity containment (issue 10), without AWS."""
from __future__ import annotations

import pytest

from responder.identity import _key_owner_from_trail, _role_id, denies_all
from responder.protection import TAG_UNVERIFIED, own_role_arns, pattern_matches, protected_reason, tag_claim
from responder.settings import Settings

ACCOUNT = "444455556666"
CONFIG = Settings(responder_role_arns=("arn:aws:iam::123456789012:role/ir-responder-Triage-role",),
                  forensics_role_arn="arn:aws:iam::999988887777:role/ir-responder-forensics",
                  custody_signer_role_arn="arn:aws:iam::999988887777:role/ir-responder-custody-signer")
USER = f"arn:aws:iam::{ACCOUNT}:user/ops"
WINDOW = "2026-01-10T00:00:00Z"


@pytest.mark.parametrize("arn, own", [
    ("arn:aws:iam::123456789012:role/ir-responder-Triage-role", True),
    ("arn:aws:iam::999988887777:role/ir-responder-forensics", True),
    (f"arn:aws:iam::{ACCOUNT}:role/ir-responder-member", True),
    (f"arn:aws:iam::{ACCOUNT}:role/ir-responder-member-read", True),  # Triage's read-only twin
    ("arn:aws:iam::999988887777:role/ir-responder-custody-signer", True),  # only Finalize signs through it
    (f"arn:aws:iam::{ACCOUNT}:role/ir-responder-member-reader", False),  # a look-alike name
    (f"arn:aws:iam::{ACCOUNT}:role/ir-responder-quarantine-deny-all", True),
    (f"arn:aws:iam::{ACCOUNT}:role/ir-responder-backdoor", False),  # a prefix is not an identity
    (f"arn:aws:iam::{ACCOUNT}:role/x/ir-responder-member", False),  # another path: not the stack's role
    ("arn:aws:iam::111111111111:role/ir-responder-Triage-role", False),  # the name, in another account
])
def test_own_roles_are_recognised_by_exact_arn_only(arn, own):
    assert (arn in own_role_arns(CONFIG, account=ACCOUNT)) is own
    reason = protected_reason(arn, {}, CONFIG, account=ACCOUNT)
    assert (reason is not None) is own


@pytest.mark.parametrize("arn, pattern, matches", [
    ("arn:aws:iam::1:role/emergency/BreakGlassAdmin", "arn:aws:iam::*:role/BreakGlass*", True),
    ("arn:aws:iam::1:role/breakglassadmin", "arn:aws:iam::*:role/BreakGlass*", True),
    ("arn:aws:iam::1:role/BREAKGLASS", "arn:aws:iam::*:role/breakglass", True),
    ("arn:aws:iam::1:role/emergency/BreakGlassAdmin", "arn:aws:iam::*:role/emergency/*", True),
    ("arn:aws:iam::1:role/other/BreakGlassAdmin", "arn:aws:iam::*:role/emergency/*", False),
    ("arn:aws:iam::1:user/BreakGlassAdmin", "arn:aws:iam::*:role/BreakGlass*", False),
    ("arn:aws:iam::1:role/NotBreakGlass", "arn:aws:iam::*:role/BreakGlass*", False),
])
def test_patterns_match_case_insensitively_and_across_paths(arn, pattern, matches):
    assert pattern_matches(arn, pattern) is matches


def tag_event(actor, when, name="ops", event="TagUser", value="true"):
    return {"eventName": event, "eventTime": when, "userIdentity": {"type": "IAMUser", "arn": actor},
            "requestParameters": {"userName": name, "tags": [{"key": "ir:protected", "value": value}]}}


def claim(events, complete=True):
    return tag_claim(USER, "user", "ops", events, window_start=WINDOW, settings=CONFIG, complete=complete)


def test_a_tag_set_by_the_principal_itself_is_void():
    assert claim([tag_event(USER, "2025-01-01T00:00:00Z")]).verdict == "void"


def test_a_tag_set_by_a_session_of_the_role_itself_is_void():
    role = f"arn:aws:iam::{ACCOUNT}:role/app"
    event = {"eventName": "TagRole", "eventTime": "2025-01-01T00:00:00Z",
             "userIdentity": {"type": "AssumedRole", "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s",
                              "sessionContext": {"sessionIssuer": {"arn": role}}},
             "requestParameters": {"roleName": "app", "tags": [{"key": "ir:protected", "value": "true"}]}}
    assert tag_claim(role, "role", "app", [event], window_start=WINDOW, settings=CONFIG).verdict == "void"


def test_a_tag_set_in_the_window_is_void_before_it_protects():
    admin = f"arn:aws:iam::{ACCOUNT}:user/admin"
    assert claim([tag_event(admin, "2026-01-10T00:00:01Z")]).verdict == "void"
    assert claim([tag_event(admin, "2026-01-09T23:59:59Z")]).verdict == "protects"


def test_the_newest_event_that_set_the_tag_decides():
    admin = f"arn:aws:iam::{ACCOUNT}:user/admin"
    events = [tag_event(admin, "2025-06-01T00:00:00Z"), tag_event(USER, "2025-07-01T00:00:00Z")]
    assert claim(events).verdict == "void"
    events += [tag_event(admin, "2025-08-01T00:00:00Z", name="someone-else")]
    assert claim(events).verdict == "void"


def test_no_event_or_no_cloudtrail_is_an_unverified_claim():
    assert claim([]).verdict == "unverified"
    assert "pages read" in claim([], complete=False).why
    assert claim(None).verdict == "unverified"
    assert protected_reason(USER, {"ir:protected": "true"}, Settings(), account=ACCOUNT,
                            tag_verdict=claim(None)) == TAG_UNVERIFIED


def test_a_void_tag_does_not_protect_and_a_verified_one_does():
    admin = f"arn:aws:iam::{ACCOUNT}:user/admin"
    tags = {"IR:Protected": "TRUE"}
    assert protected_reason(USER, tags, Settings(), tag_verdict=claim([tag_event(USER, "2025-01-01T00:00:00Z")])) is None
    reason = protected_reason(USER, tags, Settings(), tag_verdict=claim([tag_event(admin, "2025-01-01T00:00:00Z")]))
    assert "is tagged ir:protected=true" in reason and admin in reason


def test_creating_a_user_with_the_tag_counts_as_setting_it():
    admin = f"arn:aws:iam::{ACCOUNT}:user/admin"
    assert claim([tag_event(admin, "2025-01-01T00:00:00Z", event="CreateUser")]).verdict == "protects"
    assert claim([tag_event(admin, "2025-01-01T00:00:00Z", value="false")]).verdict == "unverified"


def test_key_owner_from_cloudtrail():
    records = [{"userIdentity": {"type": "IAMUser", "accountId": ACCOUNT, "userName": "bob",
                                 "arn": f"arn:aws:iam::{ACCOUNT}:user/bob"}}]
    assert _key_owner_from_trail(records, ACCOUNT) == ("bob", None)
    assert _key_owner_from_trail(records, "111111111111") == (None, f"arn:aws:iam::{ACCOUNT}:user/bob")
    session = [{"userIdentity": {"type": "AssumedRole", "accountId": "777788889999", "sessionContext": {
        "sessionIssuer": {"arn": "arn:aws:iam::777788889999:role/app"}}}}]
    assert _key_owner_from_trail(session, ACCOUNT) == (None, "arn:aws:iam::777788889999:role/app")
    assert _key_owner_from_trail(None, ACCOUNT) == (None, None)


def test_role_id_from_principal_id():
    assert _role_id("AROAEXAMPLE:i-0") == "AROAEXAMPLE"
    assert _role_id("AIDAEXAMPLE") is None and _role_id(None) is None


def test_deny_all_documents():
    assert denies_all({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    assert denies_all({"Statement": {"Effect": "Deny", "Action": ["*"], "Resource": ["*"]}})
    assert not denies_all({"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                                          "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
    assert not denies_all({"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]})
    assert not denies_all(None)
