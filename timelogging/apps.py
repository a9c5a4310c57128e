from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TimeloggingConfig(AppConfig):
    name = "timelogging"
    verbose_name = "Time logging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI description of the API key authentication (drf-spectacular
        # finds extensions by subclass registration, so the module must be imported).
        from piadesk import security  # noqa: F401  (registers its system checks)
        from timelogging.api import schema  # noqa: F401
        from timelogging.audit import register_models

        register_models()

        # Each web process keeps what its ingests read about a tenant; a change to it, from
        # any process, replaces the tenant's config_version (services/ingest_cache.py).
        from timelogging.services.ingest_cache import connect_signals

        connect_signals()

        # The admin site and its pages (Django's admin runs without autodiscovery, see
        # timelogging/admin/site.py): registered at start, so that the admin's system checks
        # see them even before the first request loads the URLs.
        import timelogging.admin  # noqa: F401

        # The table of the worker clusters' heartbeats (a database cache, not a model).
        from piadesk.ops.heartbeat import ensure_cluster_status_table

        post_migrate.connect(ensure_cluster_status_table, sender=self)

        # PIADESK_SWEEP_MINUTES: the sweep's schedule (a row created by migration 0003) is
        # brought in line after each migrate and whenever a qcluster worker starts.
        from django_q.signals import post_spawn

        from timelogging.services.delivery import sweep_schedule_sync

        post_migrate.connect(sweep_schedule_sync, sender=self, dispatch_uid="sweep_schedule")
        post_spawn.connect(sweep_schedule_sync, dispatch_uid="sweep_schedule")
