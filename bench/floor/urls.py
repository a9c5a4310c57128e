import hashlib
import json
import math
from datetime import datetime

from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django_q.tasks import async_task
from floorapp.models import Entry, Run, Tenant


@csrf_exempt
def ingest(request):
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return JsonResponse({"detail": "auth"}, status=401)
    tenant = Tenant.objects.filter(key_hash=hashlib.sha256(auth[7:].encode()).hexdigest()).first()
    if tenant is None:
        return JsonResponse({"detail": "auth"}, status=401)
    try:
        body = json.loads(request.body)
        start = datetime.fromisoformat(body["started_at"].replace("Z", "+00:00"))
        end = datetime.fromisoformat(body["completed_at"].replace("Z", "+00:00"))
        run_id = str(body["run_id"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"detail": "bad"}, status=400)
    minutes = max(1, math.ceil((end - start).total_seconds() / 60))
    try:
        with transaction.atomic():
            run = Run.objects.create(tenant=tenant, run_id=run_id, payload=body)
            entry = Entry.objects.create(run=run, minutes=minutes)
            async_task("floorapp.tasks.post_entry", entry.pk)
    except IntegrityError:
        return JsonResponse({"run_id": run_id}, status=200)
    return JsonResponse(
        {"run_id": run_id, "decision": "log", "entry": {"status": "pending", "minutes": minutes}},
        status=201,
    )


urlpatterns = [path("api/v1/automation-runs/", ingest)]
