"""``manage.py demo``: a demo tenant on a local PSA sandbox, then web + worker.

Used by ``make run`` (``make run VENDOR=autotask``). ``--vendor`` picks the sandbox PSA
(ConnectWise, Autotask or HaloPSA): it is seeded and the demo tenant's active connection is
pointed at it. Idempotent: run it again and it reuses the tenant, tags and connections, and
issues a fresh API key (keys are shown only once, so the previous demo key is revoked).

Each start also puts the demo tenant's settings back to the demo's (time logging on, tagged
clients, log as the starter, Contoso tagged, "Reset password" at 20 minutes): staff trying the
admin change them, and the curl printed at the next start must still do what it says.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from psa.registry import BACKENDS
from timelogging.models import Automation, Client, Tag, Tenant, TenantAPIKey

if TYPE_CHECKING:
    from timelogging.management.sandbox import SandboxVendor

# The sandbox's models can be imported only when the app is installed (PIADESK_SANDBOX on), so
# timelogging.management.sandbox is imported in handle(), after the setting is checked; every
# vendor has a sandbox (tests/timelogging/test_demo_command.py checks it).
VENDORS = list(BACKENDS)

DEMO_TENANT = "Demo MSP"
DEMO_KEY_NAME = "demo key (make run)"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "piadesk-demo"


class Command(BaseCommand):
    help = "Set up a demo tenant on the PSA sandbox and run the web server and the worker."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument(
            "--setup-only", action="store_true", help="Set up the demo data and exit."
        )
        parser.add_argument(
            "--vendor",
            choices=VENDORS,
            default="connectwise",
            help="The sandbox PSA the demo tenant logs time in (default: connectwise).",
        )

    def handle(self, *args, port: int, host: str, setup_only: bool, vendor: str, **options):
        if not settings.PIADESK_SANDBOX:
            raise CommandError("The demo needs the PSA sandbox: set PIADESK_SANDBOX=1.")
        from timelogging.management.sandbox import SANDBOX_VENDORS

        call_command("migrate", interactive=False, verbosity=0)
        key = self.setup(port=port, vendor=vendor)
        self.print_instructions(host=host, port=port, key=key, vendor=SANDBOX_VENDORS[vendor])
        if not setup_only:
            self.serve(host=host, port=port)

    @transaction.atomic
    def setup(self, *, port: int, vendor: str) -> str:
        user_model = get_user_model()
        admin_user, created = user_model.objects.get_or_create(
            username=ADMIN_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin_user.set_password(ADMIN_PASSWORD)
            admin_user.save()

        tenant, _ = Tenant.objects.get_or_create(name=DEMO_TENANT)
        tag, _ = Tag.objects.get_or_create(tenant=tenant, name="Time Logging")
        Tag.objects.get_or_create(tenant=tenant, name="Ad-hoc")
        # The demo's settings on every start, whatever staff changed since (module docstring).
        tenant.time_logging_enabled = True
        tenant.apply_to = Tenant.ApplyTo.TAGS
        tenant.log_as = Tenant.LogAs.STARTER
        tenant.specified_psa_user_ref = ""
        tenant.specified_psa_user_name = ""
        tenant.save()
        tenant.apply_tags.set([tag])
        contoso, _ = Client.objects.update_or_create(
            tenant=tenant, key="contoso", defaults={"name": "Contoso Ltd"}
        )
        contoso.tags.add(tag)
        fabrikam, _ = Client.objects.update_or_create(
            tenant=tenant, key="fabrikam", defaults={"name": "Fabrikam (not tagged)"}
        )
        fabrikam.tags.remove(tag)
        Automation.objects.update_or_create(
            tenant=tenant,
            key="reset-password",
            defaults={"name": "Reset password", "log_time": True, "minutes": 20},
        )
        Automation.objects.update_or_create(
            tenant=tenant,
            key="disk-cleanup",
            defaults={"name": "Disk cleanup", "log_time": True, "minutes": None},
        )

        from timelogging.management.sandbox import (
            autotask_proxy_time_entry,
            sandbox_connection_save,
        )

        # The worker calls the sandbox on this machine whatever --host the web server binds.
        sandbox_connection_save(tenant=tenant, vendor=vendor, base_url=f"http://127.0.0.1:{port}")
        if vendor == "autotask":
            # The demo logs as the user who started the automation (John Doe), not as the API
            # user: Autotask allows that only with Proxy Time Entry on (or impersonation), as a
            # configured Autotask would have it. The e2e tests show the refusal without it.
            autotask_proxy_time_entry(enabled=True)

        TenantAPIKey.objects.filter(tenant=tenant, name=DEMO_KEY_NAME).update(revoked=True)
        _, key = TenantAPIKey.objects.create_key(tenant=tenant, name=DEMO_KEY_NAME)
        return key

    def print_instructions(self, *, host: str, port: int, key: str, vendor: SandboxVendor) -> None:
        base = f"http://{host}:{port}"
        started = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=3)
        payload = {
            "run_id": f"demo-{int(time.time())}",
            "automation": {"key": "reset-password", "name": "Reset password"},
            "client": {"key": "contoso", "name": "Contoso Ltd"},
            "ticket_id": "1001",
            "started_by": "john.doe@demo-msp.example",
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "completed_at": (started + dt.timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
            "outcome": "completed",
            "summary": "Reset the password of jane@contoso.example and sent it to her manager.",
        }
        others = "|".join(v for v in VENDORS if v != vendor.vendor)
        curl = (
            f"curl -s -X POST {base}/api/v1/automation-runs/ \\\n"
            f"  -H 'Authorization: Bearer {key}' \\\n"
            f"  -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(json.dumps(payload))}"
        )
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "piadesk demo is ready.",
                    f"  Admin:          {base}/admin/   (user {ADMIN_USER!r}, "
                    f"password {ADMIN_PASSWORD!r})",
                    f"  Tenant settings:{base}/admin/timelogging/tenant/",
                    f"  PSA:            {vendor.label} (sandbox). Switch with "
                    f"`make run VENDOR={others}` (or `manage.py demo --vendor ...`)",
                    f"  PSA sandbox:    {base}/sandbox/   (what {vendor.label} received)",
                    f"  API docs:       {base}/api/docs/",
                    f"  Demo API key:   {key}   (shown once; a new one each start)",
                    "",
                    "Post a finished run (ticket 1001, client Contoso, tagged 'Time Logging'):",
                    "",
                    curl,
                    "",
                    "Within seconds the entry is in the sandbox on ticket 1001 under",
                    f"{vendor.jdoe_shown_as}, 20 minutes, and the admin shows it posted",
                    f"with {vendor.label}'s id. Send the same curl again: 200, nothing new.",
                    "Change run_id for another run.",
                    "",
                ]
            )
        )
        self.stdout.flush()

    def serve(self, *, host: str, port: int) -> None:
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        worker = subprocess.Popen([*manage, "qcluster"])
        web = subprocess.Popen([*manage, "runserver", "--noreload", f"{host}:{port}"])
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and worker.poll() is None and web.poll() is None:
                time.sleep(0.5)
        finally:
            for process in (web, worker):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in (web, worker):
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        if not stopping:
            raise CommandError("The web server or the worker stopped; see the output above.")
