import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from harness import NESTED, Target, stop_leftover_tracers  # noqa: E402


@pytest.fixture(autouse=True)
def _no_tracer_outlives_its_test():
    yield
    stop_leftover_tracers()


@pytest.fixture
def nested():
    """A running tests/targets/nested.c, killed after the test."""
    t = Target([NESTED])
    yield t
    t.kill()


def pytest_collection_modifyitems(config, items):
    # BPF tests need root. Outside CI a non-root run skips them with the reason; under CI=true
    # nothing may skip, so a missing privilege is a failure there.
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError("integration tests load BPF: CI must run them as root")
    for item in items:
        item.add_marker(pytest.mark.skip(reason="needs root to load BPF (run with sudo)"))
