"""The deployment fixture: security, member and forensics accounts in one in-memory AWS with the responder
deployed (`state_machines.local`), one deployment per test module (deploying costs about a second).

A test module declares it once, with the accounts it needs:

    dep = deployment(member_account=MEMBER, forensics_account=FORENSICS, region=REGION)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from unittest import mock

import pytest


@contextmanager
def deployed(*, region: str, default_amis: bool = True, **accounts: Any) -> Iterator[Any]:
    """The in-memory AWS of `region` with the responder deployed (`accounts`: `local.deploy`'s account arguments).
    `default_amis=False`: moto registers none of its default AMIs (for worlds that register their own image;
    describing thousands of AMI snapshots would be slow)."""
    from state_machines import local

    env = {} if default_amis else {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}
    with mock.patch.dict(os.environ, env), local.aws(region=region):
        yield local.deploy(region=region, **accounts)


def deployment(*, region: str, default_amis: bool = True, **accounts: Any) -> Callable:
    """A module-scoped `dep` fixture deploying the responder as `deployed` does."""

    @pytest.fixture(scope="module", name="dep")
    def dep() -> Iterator[Any]:
        with deployed(region=region, default_amis=default_amis, **accounts) as deployment:
            yield deployment

    return dep
