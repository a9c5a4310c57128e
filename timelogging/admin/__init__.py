"""The staff's admin: tenant settings, their catalogue, PSA connections, API keys, history.

One module per concern; importing this package registers everything on the default site.
"""

from __future__ import annotations

from django.contrib import admin
from rest_framework_api_key.models import APIKey

from timelogging.admin import (  # noqa: F401
    api_keys,
    catalog,
    config_history,
    connections,
    history,
    notifications,
    site_wide,
    tenants,
)

admin.site.site_header = "piadesk administration"
admin.site.site_title = "piadesk administration"
admin.site.index_title = "Automated time logging"

# The library registers its own, tenant-less APIKey model, which authenticates nothing in
# piadesk (keys are TenantAPIKey): hide it so that staff cannot create a key that never works.
if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)
