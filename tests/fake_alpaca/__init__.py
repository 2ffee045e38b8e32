"""A fake Alpaca Trading API for contract tests of the Alpaca adapter.

Use :func:`running_fake` from a test module's own fixture::

    @pytest.fixture
    def fake() -> Iterator[FakeAlpaca]:
        with running_fake() as server:
            yield server

On the way out it stops the server and fails the test if any JSON body the
fake sent does not conform to Alpaca's OpenAPI specification (relaxed only
where Alpaca itself departs from it, see :mod:`.openapi_check`) or if a
request handler crashed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.fake_alpaca.faults import FAULT_KINDS
from tests.fake_alpaca.openapi_check import default_validator
from tests.fake_alpaca.server import FakeAlpaca
from tests.fake_alpaca.state import ApiError, FakeAlpacaState

__all__ = [
    "FAULT_KINDS",
    "ApiError",
    "FakeAlpaca",
    "FakeAlpacaState",
    "assert_conforms",
    "running_fake",
]


def assert_conforms(fake: FakeAlpaca) -> None:
    """Every JSON body the fake sent conforms to the (relaxed) specification."""
    problems = default_validator().check_all(fake.responses)
    assert not problems, "fake sent non-conforming bodies:\n" + "\n".join(problems[:10])
    assert not fake.internal_errors, "fake handler crashed:\n" + "\n".join(fake.internal_errors)


@contextmanager
def running_fake(**kwargs: Any) -> Iterator[FakeAlpaca]:
    fake = FakeAlpaca(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()
    assert_conforms(fake)
