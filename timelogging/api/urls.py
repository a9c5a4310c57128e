from rest_framework.routers import SimpleRouter

from timelogging.api.views import AutomationRunViewSet

router = SimpleRouter()
router.register("automation-runs", AutomationRunViewSet, basename="automation-run")

urlpatterns = router.urls
