from django.urls import path
from rest_framework.routers import SimpleRouter

from timelogging.api.views import AutomationRunViewSet, TimeEntryExportView, TimeEntryViewSet

router = SimpleRouter()
router.register("automation-runs", AutomationRunViewSet, basename="automation-run")
router.register("time-entries", TimeEntryViewSet, basename="time-entry")

urlpatterns = [
    # A file name, without the router's trailing slash (and a literal dot, not a regex's).
    path("time-entries/export.csv", TimeEntryExportView.as_view(), name="time-entry-export"),
    *router.urls,
]
