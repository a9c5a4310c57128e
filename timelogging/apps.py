from django.apps import AppConfig


class TimeloggingConfig(AppConfig):
    name = "timelogging"
    verbose_name = "Time logging"
    default_auto_field = "django.db.models.BigAutoField"
