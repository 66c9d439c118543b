"""Shared fixtures. Tiers: unit (no AWS), integration (moto), infrastructure (CDK), workflow (real ASL, local)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent / "fixtures"


def load_example(name: str) -> dict:
    return copy.deepcopy(json.loads((EXAMPLES / name).read_text()))


@pytest.fixture
def iam_user_event() -> dict:
    return load_example("guardduty-iam-user.json")


@pytest.fixture
def instance_event() -> dict:
    return load_example("guardduty-instance.json")


@pytest.fixture
def instance_credentials_event() -> dict:
    return load_example("guardduty-instance-credentials.json")
