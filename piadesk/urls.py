from django.conf import settings
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from piadesk.ops.health import healthz_view
from piadesk.ops.metrics import metrics_view
from timelogging.admin import admin_site

urlpatterns = [
    path("admin/", admin_site.urls),
    path("healthz", healthz_view, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("timelogging.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

# JSON instead of Django's HTML pages for API URLs (timelogging/api/errors.py).
handler404 = "timelogging.api.errors.page_not_found"
# A lost database is a 503 with Retry-After instead (piadesk/ops/unavailable.py).
handler500 = "piadesk.ops.unavailable.server_error"

if settings.PIADESK_SANDBOX:
    urlpatterns.append(path("sandbox/", include("psa.sandbox.urls")))
