"""Fixtures shared by the delivery tests: ConnectWise mocked at the network edge (the
factories' connection points at https://cw.example.com, company "acme") and that connection."""

from __future__ import annotations

import pytest
import responses

from tests.factories import PSAConnectionFactory

CW_SITE = "https://cw.example.com"


@pytest.fixture
def cw():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{CW_SITE}/login/companyinfo/acme", json={"Codebase": "v2025_1/"})
        yield mock


@pytest.fixture
def connection(tenant):
    return PSAConnectionFactory(tenant=tenant)
