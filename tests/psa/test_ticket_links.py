"""Each backend's link to a ticket in its web app (shown on a posted entry's page): built from
the connection's settings, never by a request."""

from __future__ import annotations

import pytest

from tests.psa import test_autotask, test_connectwise, test_halopsa


def test_connectwise_links_the_service_ticket_on_the_site(fake_cache, rsps):
    backend = test_connectwise.make_backend(fake_cache)
    assert backend.ticket_url("1001") == (
        f"{test_connectwise.SITE}/v4_6_release/services/system_io/Service/fv_sr100_request.rpp"
        "?service_recid=1001&companyName=acme"
    )
    assert not rsps.calls


def test_halopsa_links_the_agent_app_beside_the_resource_server(fake_cache, rsps):
    backend = test_halopsa.make_backend(fake_cache)
    assert test_halopsa.API.endswith("/api")
    assert backend.ticket_url("1001") == test_halopsa.API.removesuffix("/api") + "/ticket?id=1001"
    assert not rsps.calls


def test_halopsa_gives_no_link_when_the_app_address_cannot_be_told(fake_cache):
    backend = test_halopsa.make_backend(fake_cache, resource_url="https://api.acme.example/v1")
    assert backend.ticket_url("1001") is None


def test_autotask_links_through_the_zone_web_address_once_the_zone_is_known(fake_cache, rsps):
    test_autotask.zone_answer(rsps)
    backend = test_autotask.make_backend(fake_cache)
    assert backend.ticket_url("1001") is None  # no zone looked up yet: no request made for it
    assert not rsps.calls

    backend._zone()  # what any call does first

    assert backend.ticket_url("1001") == (
        "https://ww5.autotask.net/Autotask/AutotaskExtend/ExecuteCommand.aspx"
        "?Code=OpenTicketDetail&TicketID=1001"
    )


@pytest.mark.parametrize("web_url", [None, "", "javascript:alert(1)", "ftp://ww5.autotask.net/"])
def test_autotask_ignores_an_unusable_web_address(fake_cache, rsps, web_url):
    test_autotask.zone_answer(rsps, zone={**test_autotask.ZONE, "webUrl": web_url})
    backend = test_autotask.make_backend(fake_cache)
    backend._zone()
    assert backend.ticket_url("1001") is None
