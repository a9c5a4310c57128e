"""Admin login lockout (issue 9, finding 3): django-axes per user name and per address."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN = reverse("admin:login")
PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture
def admin_user():
    return User.objects.create_superuser("boss", password=PASSWORD)


def login(username: str, password: str, ip: str = "203.0.113.5"):
    client = Client(REMOTE_ADDR=ip)
    response = client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})
    return client, response


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_fifty_wrong_passwords_then_the_right_one_does_not_log_in(admin_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _, response = login("boss", "guess")
        assert response.status_code in (200, 429)
    client, response = login("boss", PASSWORD)
    assert response.status_code == 429
    assert "locked" in response.content.decode().lower()
    assert not logged_in(client)


def test_a_few_mistakes_then_the_right_password_logs_in(admin_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login("boss", "guess")
    client, response = login("boss", PASSWORD)
    assert response.status_code == 302 and logged_in(client)
    # A success resets the count.
    assert not AccessAttempt.objects.filter(username="boss").exists()


def test_a_user_name_is_locked_whatever_the_address(admin_user, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        login("boss", "guess", ip=f"198.51.100.{n + 1}")
    client, response = login("boss", PASSWORD, ip="192.0.2.77")
    assert response.status_code == 429 and not logged_in(client)


def test_an_address_is_locked_whatever_the_user_name(admin_user, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        login(f"someone{n}", "guess", ip="203.0.113.66")
    client, response = login("boss", PASSWORD, ip="203.0.113.66")
    assert response.status_code == 429 and not logged_in(client)
    # Another address is not.
    client, response = login("boss", PASSWORD, ip="203.0.113.67")
    assert response.status_code == 302 and logged_in(client)


def test_the_lockout_ends_after_the_cool_off(admin_user, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login("boss", "guess")
    assert settings.AXES_COOLOFF_TIME == dt.timedelta(minutes=15)
    past = AccessAttempt.objects.all()
    past.update(attempt_time=past.first().attempt_time - dt.timedelta(minutes=16))
    client, response = login("boss", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_a_superuser_sees_and_clears_lockouts_in_the_admin(admin_user, settings, admin_client):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login("boss", "guess")
    page = admin_client.get(reverse("admin:axes_accessattempt_changelist"))
    assert page.status_code == 200 and "boss" in page.content.decode()
    attempts = list(AccessAttempt.objects.values_list("pk", flat=True))
    cleared = admin_client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": attempts, "post": "yes"},
    )
    assert cleared.status_code == 302
    client, response = login("boss", PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_the_address_behind_a_proxy_is_the_one_the_proxy_saw(settings, rf):
    from piadesk.security import client_ip

    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.9")
    assert client_ip(request) == "10.0.0.2"
    settings.PIADESK_PROXY_COUNT = 1
    # The client wrote 1.2.3.4 itself; the proxy appended what it saw.
    assert client_ip(request) == "198.51.100.9"
