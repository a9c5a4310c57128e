"""API keys are named by their public prefix (issue 9): existing keys' ids ("prefix.hash") become
their prefix, and so do the admin log's and the configuration history's object ids for them."""

from __future__ import annotations

from django.db import migrations


def ids_to_prefixes(apps, schema_editor):
    TenantAPIKey = apps.get_model("timelogging", "TenantAPIKey")
    ConfigChange = apps.get_model("timelogging", "ConfigChange")
    LogEntry = apps.get_model("admin", "LogEntry")
    ContentType = apps.get_model("contenttypes", "ContentType")
    content_type = ContentType.objects.filter(app_label="timelogging", model="tenantapikey").first()
    for old_id, prefix in TenantAPIKey.objects.values_list("id", "prefix"):
        if old_id == prefix:
            continue
        # Nothing references a key by a foreign key: its id can change in place.
        TenantAPIKey.objects.filter(id=old_id).update(id=prefix)
        if content_type is not None:
            ConfigChange.objects.filter(content_type=content_type, object_pk=old_id).update(
                object_pk=prefix
            )
            LogEntry.objects.filter(content_type=content_type, object_id=old_id).update(
                object_id=prefix
            )


class Migration(migrations.Migration):
    dependencies = [
        ("timelogging", "0008_staff_notices"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(ids_to_prefixes, migrations.RunPython.noop)]
