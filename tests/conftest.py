"""Shared fixtures: the example zones and running fastdns servers (see support/server.py).

pytest puts this folder on sys.path (it has no __init__.py), so test modules import the helpers
as ``from support.client import query`` and ``from support.server import running_fastdns``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.server import FastdnsHandle, running_fastdns

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ZONES = REPO / "examples" / "zones"  # the README quick start's zone directory
DATA_ZONES = REPO / "tests" / "data" / "zones"  # the test corpus


@pytest.fixture
def zone_dir(tmp_path: Path) -> Path:
    """A writable copy of the example zone directory (for tests that edit zones)."""
    target = tmp_path / "zones"
    shutil.copytree(EXAMPLE_ZONES, target)
    return target


@pytest.fixture(scope="module")
def example_server() -> Iterator[FastdnsHandle]:
    """fastdns serving ``examples/zones`` (read-only), shared by a module's tests."""
    with running_fastdns(EXAMPLE_ZONES) as server:
        yield server


@pytest.fixture
def start_fastdns() -> Iterator[Callable[..., FastdnsHandle]]:
    """``start_fastdns(zone_dir, **kwargs)`` -> a running server (``running_fastdns``
    arguments), stopped and checked when the test ends."""
    with contextlib.ExitStack() as stack:

        def start(zone_dir, **kwargs) -> FastdnsHandle:
            return stack.enter_context(running_fastdns(zone_dir, **kwargs))

        yield start
