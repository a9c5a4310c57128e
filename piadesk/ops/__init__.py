"""Operating piadesk: health (``/healthz``), metrics (``/metrics``), the worker's heartbeat.

See README.md, "Production" → "Health and metrics".
"""
