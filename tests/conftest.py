"""Shared test set-up: hypothesis profiles, the `gpu` marker, float64 by default for checks."""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minigen

# `ci` keeps the suite well under 10 minutes on 2 cores and never flakes on timing;
# `thorough` is for local runs: pytest --hypothesis-profile=thorough
settings.register_profile("ci", max_examples=20, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=500, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_collection_modifyitems(config, items):
    if minigen.cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (CuPy absent or no GPU on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    minigen.manual_seed(0)
    np.random.seed(0)
    yield
