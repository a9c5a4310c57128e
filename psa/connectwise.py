"""ConnectWise PSA (Manage) REST API v3.0 backend."""

from __future__ import annotations

from typing import ClassVar

from psa.base import ConfigField, PSABackend


class ConnectWiseBackend(PSABackend):
    vendor: ClassVar[str] = "connectwise"
    label: ClassVar[str] = "ConnectWise PSA"
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField(
            "site_url",
            "Site address",
            kind="url",
            help_text="e.g. https://api-na.myconnectwise.net (https; plain http only for "
            "loopback addresses such as the local sandbox).",
        ),
        ConfigField("company_id", "Company ID", help_text="The company you log in with."),
        ConfigField("public_key", "Public key", help_text="API member's public key."),
        ConfigField("private_key", "Private key", secret=True),
    )
