from django.apps import AppConfig


class TimeloggingConfig(AppConfig):
    name = "timelogging"
    verbose_name = "Time logging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the OpenAPI description of the API key authentication (drf-spectacular
        # finds extensions by subclass registration, so the module must be imported).
        from timelogging.api import schema  # noqa: F401
        from timelogging.audit import register_models

        register_models()
