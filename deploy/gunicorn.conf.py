"""gunicorn settings for piadesk (deploy/piadesk-web.service; README "Production").

Sync workers: every request is short except the admin's PSA look-ups (Test connection,
Preview, the user pickers), which wait on the PSA. ``WEB_CONCURRENCY`` sets the number of
workers (gunicorn reads it itself; default below: 2 per CPU + 1).
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("PIADESK_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
# Above the longest admin PSA look-up: 4 requests × (5 s connect + 30 s read).
timeout = 150
graceful_timeout = 30
# Recycle workers now and then (memory growth in long-lived processes).
max_requests = 2000
max_requests_jitter = 200
# Only the reverse proxy on this host may say a request came over HTTPS (X-Forwarded-Proto).
forwarded_allow_ips = os.environ.get("PIADESK_PROXY_IPS", "127.0.0.1,::1")
accesslog = "-"
errorlog = "-"


def child_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """prometheus-client multiprocess mode: forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
