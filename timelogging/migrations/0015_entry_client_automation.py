"""Each entry carries its run's client and automation (reports sum them from one index).

Upgrade order as usual (README "Upgrades"): this migration runs while the previous version
serves. It adds the two columns (nullable), copies them from the runs, then builds the new
report index. Entries the previous version writes in the meantime have none: the sweep fills
them in (services/entry_catalog.py), and ``entry_catalog_missing`` finds them cheaply.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def copy_from_runs(apps, schema_editor):
    TimeEntry = apps.get_model("timelogging", "TimeEntry")
    AutomationRun = apps.get_model("timelogging", "AutomationRun")
    run = AutomationRun.objects.filter(pk=OuterRef("run_id"))
    TimeEntry.objects.filter(client__isnull=True).update(
        client_id=Subquery(run.values("client_id")[:1]),
        automation_id=Subquery(run.values("automation_id")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("timelogging", "0014_connection_last_test"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="automationrun",
            name="run_report",
        ),
        migrations.RemoveIndex(
            model_name="timeentry",
            name="entry_report",
        ),
        migrations.AddField(
            model_name="timeentry",
            name="automation",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="timelogging.automation",
            ),
        ),
        migrations.AddField(
            model_name="timeentry",
            name="client",
            field=models.ForeignKey(
                db_index=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="timelogging.client",
            ),
        ),
        migrations.RunPython(copy_from_runs, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="timeentry",
            index=models.Index(
                condition=models.Q(("status", "posted")),
                fields=[
                    "tenant",
                    "start",
                    "minutes",
                    "client",
                    "automation",
                    "psa_user_ref",
                    "psa_user_name",
                ],
                name="entry_report",
            ),
        ),
        migrations.AddIndex(
            model_name="timeentry",
            index=models.Index(
                condition=models.Q(("client", None)), fields=["id"], name="entry_catalog_missing"
            ),
        ),
    ]
