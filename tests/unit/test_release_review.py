"""Adversarial review of the release's pure decisions (responder.release): an earlier, complete release of the
incident, or another incident holding the same instance, keeps a release from undoing another containment."""
from __future__ import annotations

from responder import isolation, release

ARN = "arn:aws:ec2:eu-west-1:444455556666:instance/i-1"


def test_a_complete_earlier_release_is_found_and_a_partial_one_is_not():
    """A release that released the target completely: what is contained after it is a later incident's (the
    release reports it, changes nothing). One that failed part-way may be finished (released_before)."""
    done = {"results": {"release:rel-1": {"targets": [{"target": ARN, "status": "released"}]}}}
    partial = {"results": {"release:rel-1": {"targets": [{"target": ARN, "status": "failed"}]}},
               "timeline": [{"task": "release", "status": "done", "subject": ARN}]}
    assert release.release_completed(done, ARN) == "rel-1"
    assert release.release_completed(partial, ARN) is None and release.released_before(partial, ARN)
    assert release.release_completed(done, ARN + "0") is None and release.release_completed(None, ARN) is None


def test_the_other_incidents_an_instance_is_tagged_with_are_named():
    """The isolation tags the first incident in ir:incident and later ones (which found it isolated) in
    ir:incidents: each relies on the isolation, so a release of one of them must not lift it."""
    assert (release.INCIDENT_TAG, release.LATER_INCIDENTS_TAG) == (isolation.INCIDENT_TAG, isolation.LATER_INCIDENTS_TAG)
    tags = lambda first, later=None: {"Tags": [{"Key": "ir:incident", "Value": first}]  # noqa: E731
                                      + ([{"Key": "ir:incidents", "Value": later}] if later is not None else [])}
    assert release.other_incidents(tags("gd-a"), "gd-a") == []
    assert release.other_incidents(tags("gd-a", "IR-b  gd-c gd-a"), "gd-a") == ["IR-b", "gd-c"]
    assert release.other_incidents(tags("gd-a", "IR-b"), "IR-b") == ["gd-a"]
    assert release.other_incidents({"Tags": [{"Key": "ir:incidents", "Value": "x"}]}, "gd-a") == ["x"]
    assert release.other_incidents(None, "gd-a") == [] and release.other_incidents({}, "gd-a") == []
