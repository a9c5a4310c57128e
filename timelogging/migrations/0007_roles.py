"""The two roles, as groups with their permissions: "MSP staff" and "Auditor".

Which tenant a member sees is not a permission: it is their StaffProfile (the admin scopes
every page to it). ``python manage.py grant_role`` gives a user a role and a tenant.
Re-running (or migrating back and forth) sets the groups' permissions to exactly these.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

STAFF = "MSP staff"
AUDITOR = "Auditor"

# MSP staff: configure their tenant (no deleting: tags, connections and keys are kept for the
# history; a key is revoked, a connection deactivated), read its history, retry failed entries.
STAFF_PERMISSIONS = [
    "change_tenant",
    "view_tenant",
    *(
        f"{action}_{model}"
        for model in ("tag", "client", "automation", "psaconnection", "psausermapping", "tenantapikey")
        for action in ("add", "change", "view")
    ),
    "view_automationrun",
    "view_timeentry",
    "view_postattempt",
    "retry_timeentry",
    "view_configchange",
]

# Auditors: see everything of their tenant, change nothing.
AUDITOR_PERMISSIONS = [
    f"view_{model}"
    for model in (
        "tenant",
        "tag",
        "client",
        "automation",
        "psaconnection",
        "psausermapping",
        "tenantapikey",
        "automationrun",
        "timeentry",
        "postattempt",
        "configchange",
    )
]


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate); a fresh database
    # has none yet, so create timelogging's now.
    # create_permissions skips an app without models_module, which the migration state's app
    # configs lack; the real registry's must be left as it was (test_roles runs this function
    # with it: setting None there made every later flush recreate no timelogging permission).
    app_config = apps.get_app_config("timelogging")
    previous = getattr(app_config, "models_module", None)
    app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, verbosity=0)
    finally:
        app_config.models_module = previous

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ((STAFF, STAFF_PERMISSIONS), (AUDITOR, AUDITOR_PERMISSIONS)):
        permissions = list(
            Permission.objects.filter(content_type__app_label="timelogging", codename__in=codenames)
        )
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise RuntimeError(f"permissions missing for the {name!r} role: {sorted(missing)}")
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[STAFF, AUDITOR]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("timelogging", "0006_config_history"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
