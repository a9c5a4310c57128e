"""Date formats of piadesk's pages: ISO-like dates, and times labelled with their zone
("2026-05-01 10:42 EDT"): a tenant's pages show its own zone (``Tenant.time_zone``), so a time
without its zone would be ambiguous. Read by Django through ``FORMAT_MODULE_PATH``."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i T"
TIME_FORMAT = "H:i"
