from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "psa.sandbox"
    label = "sandbox"
    verbose_name = "PSA sandbox"
    default_auto_field = "django.db.models.BigAutoField"
