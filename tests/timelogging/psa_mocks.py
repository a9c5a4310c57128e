"""ConnectWise mocked at the network edge for admin tests (the factories' connection points at
https://cw.example.com, company "acme")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import responses

SITE = "https://cw.example.com"
API = f"{SITE}/v2025_1/apis/3.0/"


def member(identifier: str, first: str, last: str, email: str = "", id: int = 1) -> dict[str, Any]:
    return {
        "id": id,
        "identifier": identifier,
        "firstName": first,
        "lastName": last,
        "primaryEmail": email,
        "officeEmail": "",
    }


class RecordingMock(responses.RequestsMock):
    """A ``RequestsMock`` whose ``calls`` survive the ``with`` block (responses clears them on
    exit), so that "no request was made" can be asserted after it."""

    def __exit__(self, *exc_info: Any) -> None:
        made = list(self.calls)
        try:
            super().__exit__(*exc_info)
        finally:
            for call in made:
                self.calls.add(call.request, call.response)


@contextmanager
def connectwise(*members: dict[str, Any]) -> Iterator[responses.RequestsMock]:
    """The company look-up, and ``system/members`` answering ``members`` (whatever the
    conditions: the backend matches identifiers exactly itself). Any other request is refused
    as if nothing listened, so no test reaches the network."""
    with RecordingMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{SITE}/login/companyinfo/acme", json={"Codebase": "v2025_1/"})
        mock.get(f"{API}system/members", json=list(members))
        yield mock


def calls_to(mock: responses.RequestsMock, fragment: str) -> list[Any]:
    return [c for c in mock.calls if fragment in (c.request.url or "")]
