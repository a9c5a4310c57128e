"""The "Tenant Settings → Automated Time Logging" page (TenantAdmin)."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import WARNING
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import (
    AutomationFactory,
    ClientFactory,
    PSAConnectionFactory,
    TagFactory,
    TenantFactory,
)
from tests.timelogging.admin_support import (
    admin_url,
    changeform_data,
    form_errors,
    inline_errors,
    messages_text,
)
from tests.timelogging.psa_mocks import connectwise, member
from timelogging.forms import PSA_USER_REQUIRED, TAGS_REQUIRED
from timelogging.models import Automation, Tag, Tenant

pytestmark = pytest.mark.django_db

AUTOMATIONS = "automation_set"  # the inlines' formset prefixes
TAGS = "tag_set"


@pytest.fixture
def tenant():
    tenant = TenantFactory(
        name="Acme MSP",
        time_logging_enabled=False,
        apply_to=Tenant.ApplyTo.NONE,
        log_as=Tenant.LogAs.STARTER,
    )
    PSAConnectionFactory(tenant=tenant)
    return tenant


def _page(admin_client, tenant):
    response = admin_client.get(admin_url(tenant, "change"))
    assert response.status_code == 200
    return response


def _post(admin_client, tenant, **changes):
    data = changeform_data(_page(admin_client, tenant), **changes)
    return admin_client.post(admin_url(tenant, "change"), data, follow=True)


def _fieldsets(response):
    """{fieldset name: its fields, flattened}."""
    return {
        fs.name: [
            name for line in fs.fields for name in ([line] if isinstance(line, str) else line)
        ]
        for fs in response.context["adminform"]
    }


def test_settings_page_mirrors_the_article(admin_client, tenant):
    AutomationFactory(tenant=tenant, name="Reset password", key="reset-pw")
    TagFactory(tenant=tenant, name="Ad-hoc")
    response = _page(admin_client, tenant)

    form = response.context["adminform"].form
    fieldsets = _fieldsets(response)
    assert list(fieldsets) == ["Tenant", "Automated Time Logging"]
    assert fieldsets["Tenant"] == ["name", "time_zone"]
    assert fieldsets["Automated Time Logging"] == [
        "time_logging_enabled",
        "apply_to",
        "apply_tags",
        "log_as",
        "specified_psa_user_ref",
        "specified_psa_user_name",
    ]
    assert form["time_logging_enabled"].label == "Status"
    assert [c[1] for c in form.fields["apply_to"].choices] == [
        "None",
        "All Clients",
        "Based on Tag",
    ]
    assert [c[1] for c in form.fields["log_as"].choices] == [
        "The user who started the automation",
        "The ticket assignee",
        "A specified PSA user",
    ]
    html = response.content.decode()
    # Status is a switch: a checkbox (works without JavaScript), its state in words.
    assert re.search(r'<input type="checkbox" name="time_logging_enabled"[^>]* role="switch"', html)
    assert '<span class="piadesk-switch-on">On</span>' in html
    # The tags: a list of checkboxes, without Django's "Hold down Control" advice.
    assert 'type="checkbox" name="apply_tags"' in html
    assert "Hold down" not in html and 'class="selectfilter' not in html
    # One tenant at a time: neither "Save and add another" nor "Save as new".
    assert 'name="_addanother"' not in html and 'name="_saveasnew"' not in html
    assert 'type="radio" name="apply_to"' in html
    assert 'type="radio" name="log_as"' in html
    assert "nothing is logged, even when Status is On" in html  # On + None explained
    assert 'id="add_id_apply_tags"' not in html  # tags are created below, for this tenant
    assert "Time logging per automation" in html
    assert "Reset password" in html and "reset-pw" in html
    inline_prefixes = [i.formset.prefix for i in response.context["inline_admin_formsets"]]
    assert inline_prefixes == [AUTOMATIONS, TAGS]


def test_apply_tags_offers_only_the_tenants_own_tags(admin_client, tenant):
    ours = TagFactory(tenant=tenant, name="Time Logging")
    TagFactory(name="Someone else's")
    form = _page(admin_client, tenant).context["adminform"].form
    assert list(form.fields["apply_tags"].queryset) == [ours]


def test_valid_settings_are_saved_with_a_summary(admin_client, tenant):
    time_logging = TagFactory(tenant=tenant, name="Time Logging")
    adhoc = TagFactory(tenant=tenant, name="Ad-hoc")
    TagFactory(tenant=tenant, name="Unused")

    response = _post(
        admin_client,
        tenant,
        time_logging_enabled="True",
        apply_to="tags",
        apply_tags=[str(time_logging.pk), str(adhoc.pk)],
        log_as="assignee",
    )

    assert response.status_code == 200
    assert response.redirect_chain  # saved: back to the list
    tenant.refresh_from_db()
    assert tenant.time_logging_enabled is True
    assert tenant.apply_to == Tenant.ApplyTo.TAGS
    assert set(tenant.apply_tags.all()) == {time_logging, adhoc}
    assert tenant.log_as == Tenant.LogAs.ASSIGNEE
    assert (
        "Time logging is on for clients tagged Ad-hoc or Time Logging, logged as the ticket "
        "assignee." in " / ".join(messages_text(response))
    )


def test_specified_psa_user_and_all_clients(admin_client, tenant):
    # The chosen user is checked against the PSA (tests/timelogging/test_admin_psa_tools.py).
    with connectwise(member("timelogging", "Time", "Logging")):
        response = _post(
            admin_client,
            tenant,
            time_logging_enabled="True",
            apply_to="all",
            log_as="specified",
            specified_psa_user_ref="timelogging",
            specified_psa_user_name="Pia Time Logging",
        )
    tenant.refresh_from_db()
    assert (tenant.log_as, tenant.specified_psa_user_ref) == ("specified", "timelogging")
    assert (
        "Time logging is on for all clients, logged as the PSA user Pia Time Logging "
        "(timelogging)." in " / ".join(messages_text(response))
    )


def test_status_no_is_saved_and_summarised(admin_client, tenant):
    tenant.time_logging_enabled = True
    tenant.apply_to = Tenant.ApplyTo.ALL
    tenant.save()
    response = _post(admin_client, tenant, time_logging_enabled="False")
    tenant.refresh_from_db()
    assert tenant.time_logging_enabled is False
    assert "Time logging is off: nothing is logged for anyone." in " / ".join(
        messages_text(response)
    )


def test_status_yes_with_apply_to_none_is_valid_but_warned(admin_client, tenant):
    response = _post(admin_client, tenant, time_logging_enabled="True", apply_to="none")
    tenant.refresh_from_db()
    assert tenant.time_logging_enabled is True and tenant.apply_to == "none"
    [warning] = [m for m in response.context["messages"] if m.level == WARNING]
    assert "“Apply to” is None: nothing is logged" in str(warning)


def test_summary_mentions_switched_off_automations_and_missing_connection(admin_client):
    tenant = TenantFactory(apply_to="all", log_as="starter")
    AutomationFactory(tenant=tenant, log_time=False)
    response = _post(admin_client, tenant)
    [message] = messages_text(response)  # one message: what the save did and what it now does
    assert "logged as the user who started the automation" in message
    assert "switched off for 1 automation." in message
    assert "No PSA connection is active yet" in message


def test_based_on_tag_without_a_tag_is_refused(admin_client, tenant):
    TagFactory(tenant=tenant)
    response = _post(
        admin_client, tenant, time_logging_enabled="True", apply_to="tags", apply_tags=None
    )
    assert not response.redirect_chain
    assert form_errors(response) == {"apply_tags": [TAGS_REQUIRED]}
    assert TAGS_REQUIRED in response.content.decode()
    tenant.refresh_from_db()
    assert (tenant.time_logging_enabled, tenant.apply_to) == (False, "none")


def test_specified_user_without_a_user_is_refused(admin_client, tenant):
    response = _post(admin_client, tenant, log_as="specified", specified_psa_user_ref="  ")
    assert form_errors(response) == {"specified_psa_user_ref": [PSA_USER_REQUIRED]}
    tenant.refresh_from_db()
    assert tenant.log_as == "starter"


def test_another_tenants_tag_is_refused(admin_client, tenant):
    ours = TagFactory(tenant=tenant)
    theirs = TagFactory(name="Theirs")
    response = _post(
        admin_client, tenant, apply_to="tags", apply_tags=[str(ours.pk), str(theirs.pk)]
    )
    errors = form_errors(response)
    assert list(errors) == ["apply_tags"]
    assert errors["apply_tags"] == [
        f"Tag {theirs.pk} is not one of this tenant's tags; choose among the tags listed."
    ]
    tenant.refresh_from_db()
    assert tenant.apply_to == "none"
    assert not tenant.apply_tags.exists()


def test_time_per_automation_is_saved(admin_client, tenant):
    a = AutomationFactory(tenant=tenant, name="A")
    b = AutomationFactory(tenant=tenant, name="B", minutes=5)
    response = _post(
        admin_client,
        tenant,
        **{
            f"{AUTOMATIONS}-0-minutes": "15",
            f"{AUTOMATIONS}-1-log_time": None,  # unchecked
            f"{AUTOMATIONS}-1-minutes": "",
        },
    )
    assert response.redirect_chain
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.log_time, a.minutes) == (True, 15)
    assert (b.log_time, b.minutes) == (False, None)


@pytest.mark.parametrize("minutes", ["0", "1441", "-3"])
def test_minutes_out_of_range_are_refused(admin_client, tenant, minutes):
    automation = AutomationFactory(tenant=tenant, minutes=10)
    response = _post(admin_client, tenant, apply_to="all", **{f"{AUTOMATIONS}-0-minutes": minutes})
    [row] = inline_errors(response, AUTOMATIONS)
    assert row == {
        "minutes": [
            "Enter a number of minutes from 1 to 1440, or leave it empty to log the run's "
            "real duration."
        ]
    }
    automation.refresh_from_db()
    tenant.refresh_from_db()
    assert automation.minutes == 10
    assert tenant.apply_to == "none"  # nothing saved, not even the valid part


def test_automation_rows_cannot_be_added_or_deleted_here(admin_client, tenant):
    AutomationFactory(tenant=tenant)
    response = _page(admin_client, tenant)
    [automations] = [
        i for i in response.context["inline_admin_formsets"] if i.formset.prefix == AUTOMATIONS
    ]
    assert automations.formset.extra == 0
    assert automations.formset.max_num == 0  # no "add another"
    assert not automations.formset.can_delete
    assert not automations.has_add_permission


def test_tags_can_be_created_and_renamed_on_the_page(admin_client, tenant):
    tag = TagFactory(tenant=tenant, name="Adhoc")
    response = _post(
        admin_client,
        tenant,
        **{f"{TAGS}-0-name": "Ad-hoc", f"{TAGS}-1-name": "Time Logging"},
    )
    assert response.redirect_chain
    assert list(tenant.tag_set.values_list("name", flat=True)) == ["Ad-hoc", "Time Logging"]
    tag.refresh_from_db()
    assert tag.name == "Ad-hoc"


def test_duplicate_tag_names_are_refused_whatever_their_case(admin_client, tenant):
    TagFactory(tenant=tenant, name="Ad-hoc")
    response = _post(admin_client, tenant, **{f"{TAGS}-1-name": "ad-HOC"})
    [_, new_row] = inline_errors(response, TAGS)
    assert new_row == {
        "name": [
            "The tenant already has a tag named “Ad-hoc”: tag names must differ (whatever "
            "their case)."
        ]
    }
    assert tenant.tag_set.count() == 1


def test_two_new_tags_with_the_same_name_are_refused(admin_client, tenant):
    data = changeform_data(_page(admin_client, tenant))
    data.update(
        {
            f"{TAGS}-TOTAL_FORMS": "2",
            f"{TAGS}-0-name": "Ad-hoc",
            f"{TAGS}-0-tenant": str(tenant.pk),
            f"{TAGS}-1-name": "AD-HOC",
            f"{TAGS}-1-tenant": str(tenant.pk),
            f"{TAGS}-1-id": "",
        }
    )
    response = admin_client.post(admin_url(tenant, "change"), data)
    assert response.status_code == 200
    assert inline_errors(response, TAGS)[1] == {
        "name": [
            "The tenant already has a tag named “Ad-hoc”: tag names must differ (whatever "
            "their case)."
        ]
    }
    assert not Tag.objects.filter(tenant=tenant).exists()


def test_add_page_creates_a_tenant_with_its_tags(admin_client):
    response = admin_client.get(admin_url(Tenant, "add"))
    assert response.status_code == 200
    assert [i.formset.prefix for i in response.context["inline_admin_formsets"]] == [TAGS]
    data = changeform_data(
        response,
        name="New MSP",
        time_logging_enabled="True",
        apply_to="all",
        **{f"{TAGS}-0-name": "Ad-hoc"},
    )
    response = admin_client.post(admin_url(Tenant, "add"), data, follow=True)
    assert response.redirect_chain, response.context["adminform"].form.errors
    tenant = Tenant.objects.get(name="New MSP")
    assert (tenant.time_logging_enabled, tenant.apply_to) == (True, "all")
    assert list(tenant.tag_set.values_list("name", flat=True)) == ["Ad-hoc"]


def test_tenants_are_not_deleted_from_the_admin(admin_client, tenant):
    response = admin_client.post(admin_url(tenant, "delete"), {"post": "yes"})
    assert response.status_code == 403
    assert Tenant.objects.filter(pk=tenant.pk).exists()


def _populate(tenant, n):
    tags = TagFactory.create_batch(n, tenant=tenant)
    for i in range(n):
        AutomationFactory(tenant=tenant, minutes=i + 1 if i % 2 else None)
        ClientFactory(tenant=tenant, tags=tags[: i % 3 + 1])
    tenant.apply_tags.set(tags[:2])


def _count_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_settings_page_queries_do_not_grow_with_automations_tags_and_clients(admin_client):
    small, large = TenantFactory(), TenantFactory()
    PSAConnectionFactory(tenant=small)
    PSAConnectionFactory(tenant=large)
    _populate(small, 3)
    _populate(large, 30)
    _count_queries(admin_client, admin_url(small, "change"))  # warm the session
    assert _count_queries(admin_client, admin_url(small, "change")) == _count_queries(
        admin_client, admin_url(large, "change")
    )


def test_settings_list_queries_do_not_grow_with_tenants(admin_client):
    url = admin_url(Tenant, "changelist")
    for _ in range(3):
        PSAConnectionFactory(tenant=TenantFactory())
    few = _count_queries(admin_client, url)
    for _ in range(30):
        PSAConnectionFactory(tenant=TenantFactory())
    assert _count_queries(admin_client, url) == few


def test_settings_list_shows_status_and_active_psa(admin_client, tenant):
    response = admin_client.get(admin_url(Tenant, "changelist"))
    html = response.content.decode()
    assert "Acme MSP" in html
    assert "ConnectWise PSA" in html
    assert Automation.objects.count() == 0


def test_tenant_names_are_unique(admin_client, tenant):
    TenantFactory(name="Taken")
    response = _post(admin_client, tenant, name="Taken")
    assert form_errors(response) == {"name": ["Another tenant already has this name."]}
