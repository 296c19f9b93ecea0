"""Where the tests find the repository and the real annotation fixtures (../shared beside the clone)."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_FIXTURES = Path(os.environ.get("FLUX_REAL_FIXTURES", REPO.parent / "shared" / "fixtures" / "real"))


def require_real_fixtures() -> Path:
    """The fixtures folder; missing is a skip locally but a failure in CI, where ../shared is promised."""
    if not REAL_FIXTURES.is_dir():
        message = f"real annotation fixtures not found at {REAL_FIXTURES} (set FLUX_REAL_FIXTURES)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return REAL_FIXTURES
