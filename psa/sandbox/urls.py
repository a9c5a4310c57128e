"""Sandbox URLs, mounted at ``/sandbox/`` by ``piadesk/urls.py`` only when PIADESK_SANDBOX is on.

One prefix per vendor (``connectwise/``; later ``autotask/``, ``halopsa/``), each served by
its own module.
"""

from django.urls import include, path

from psa.sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("", views.index, name="index"),
    path("<str:vendor>/faults", views.faults, name="faults"),
    path(
        "Autotask/AutotaskExtend/ExecuteCommand.aspx",
        views.autotask_execute_command,
        name="autotask-execute-command",
    ),
    path("connectwise/", include("psa.sandbox.connectwise")),
    path("autotask/", include("psa.sandbox.autotask")),
    path("halopsa/", include("psa.sandbox.halopsa")),
]
