from __future__ import annotations

from typing import Any

import pytest
import responses


class FakeCache:
    """A dict-backed stand-in for Django's cache that remembers timeouts and deletions."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.timeouts: dict[str, float | None] = {}
        self.deleted: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        self.data[key] = value
        self.timeouts[key] = timeout

    def delete(self, key: str) -> bool:
        self.deleted.append(key)
        return self.data.pop(key, None) is not None


@pytest.fixture
def fake_cache() -> FakeCache:
    return FakeCache()


@pytest.fixture
def rsps():
    """HTTP mocked at the network edge; every registered response must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock
