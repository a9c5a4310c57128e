"""The staff's admin: tenant settings, their catalogue, PSA connections, API keys, history.

``site.py`` is the admin site (``PiadeskAdminSite``, served at /admin/); one module per
concern registers its pages on it, and importing this package registers everything.
"""

from __future__ import annotations

from timelogging.admin import (  # noqa: F401
    api_keys,
    catalog,
    config_history,
    connections,
    history,
    notifications,
    tenants,
)
from timelogging.admin.site import admin_site, register_superuser_only_pages

register_superuser_only_pages(admin_site)

__all__ = ["admin_site"]
