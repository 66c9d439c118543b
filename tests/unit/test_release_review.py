"""Adversarial review of the release's pure decisions (responder.release): an earlier release of the incident must
not waive the checks that keep a release from undoing another incident's containment."""
from __future__ import annotations

from responder import release
from tests.unit.test_release import ISOLATED, isolation_result, now


def test_after_a_release_an_instance_isolated_again_by_another_incident_is_not_released_again():
    """Incident A was released (`released`); incident B then isolated the instance again (quarantine group,
    deny-all profile, the same ACL deny): a second release of A sees only its own old entries and undoes B's
    isolation step by step. Safe: nothing of A's is left to undo - no steps (or a refusal)."""
    conflicts, steps, _ = release.instance_plan(release.instance_changes(isolation_result(), ISOLATED),
                                                **now(released=True, restore_autoscaling=False))
    assert conflicts or steps == [], f"a second release of A would undo another isolation: {steps}"
