"""drf-spectacular extensions: how the API's authentication appears in the OpenAPI schema.

Imported by ``TimeloggingConfig.ready()`` so that the extension is registered before the first
schema is generated.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TenantAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "timelogging.api.auth.TenantAPIKeyAuthentication"
    name = "TenantAPIKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "piadesk API key",
            "description": "The tenant's API key (Django admin → API keys), sent as "
            "`Authorization: Bearer <key>`. The tenant always comes from the key. A read-only "
            "key can read the history but not report runs.",
        }
