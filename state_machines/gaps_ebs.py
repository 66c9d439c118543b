"""EBS gaps of moto, filled for the local runtime (see state_machines/gaps.py)."""
from __future__ import annotations

from contextlib import ExitStack


def install(stack: ExitStack) -> None:
    """Nothing patched yet."""
