import pytest

from tests.paths import require_real_fixtures


@pytest.fixture(scope="session")
def real_fixtures():
    return require_real_fixtures()
