"""Protected principals fail closed when the deployment's protection configuration is missing or unusable."""
from __future__ import annotations

from responder.protection import UNVERIFIABLE, protected_reason
from responder.settings import Settings

USER = "arn:aws:iam::444455556666:user/ci-deployer"


def test_an_absent_protected_principals_setting_protects_everything():
    config = Settings.from_env({})
    assert config.protection_config_error == "IR_PROTECTED_PRINCIPALS is not configured"
    assert protected_reason(USER, {}, config) == UNVERIFIABLE


def test_an_empty_setting_means_no_break_glass_list():
    config = Settings.from_env({"IR_PROTECTED_PRINCIPALS": ""})
    assert config.protection_config_error == ""
    assert protected_reason(USER, {}, config) is None


def test_a_pattern_that_is_not_an_arn_pattern_is_refused_not_ignored():
    config = Settings.from_env({"IR_PROTECTED_PRINCIPALS": "arn:aws:iam::*:role/BreakGlass*, emergency-*"})
    assert "'emergency-*' is not an ARN pattern" in config.protection_config_error
    assert protected_reason(USER, {}, config) == UNVERIFIABLE


def test_the_responder_s_own_roles_are_recognised_even_then():
    reason = protected_reason("arn:aws:iam::444455556666:role/ir-responder-member", {}, Settings.from_env({}),
                              account="444455556666")
    assert reason.endswith("is one of the responder's own roles")


def test_configured_patterns_and_the_tag_still_protect():
    config = Settings.from_env({"IR_PROTECTED_PRINCIPALS": "arn:aws:iam::*:user/ci-*"})
    assert "matches the protected pattern" in protected_reason(USER, {}, config)
    config = Settings.from_env({"IR_PROTECTED_PRINCIPALS": ""})
    assert "is tagged ir:protected=true" in protected_reason(USER, {"ir:protected": "TRUE"}, config)
    assert protected_reason(USER, None, config) == UNVERIFIABLE  # tags unreadable
