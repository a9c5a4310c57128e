"""The OpenAPI schema clients code against, and the docs page that shows it (offline)."""

from __future__ import annotations

import re

import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command


def test_schema_generates_valid_without_warnings(tmp_path):
    """drf-spectacular's own check: every endpoint resolved, the result valid OpenAPI 3."""
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert set(schema["paths"]) == {
        "/api/v1/automation-runs/",
        "/api/v1/automation-runs/{run_id}/",
        "/api/v1/time-entries/",
        "/api/v1/time-entries/export.csv",
    }


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_every_operation_needs_the_bearer_api_key(schema):
    assert schema["components"]["securitySchemes"]["TenantAPIKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "piadesk API key",
        "description": schema["components"]["securitySchemes"]["TenantAPIKey"]["description"],
    }
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"TenantAPIKey": []}], (method, path)
            assert "401" in operation["responses"], (method, path)


def test_list_operations_document_filters_pagination_and_errors(schema):
    def names(path):
        return {p["name"] for p in schema["paths"][path]["get"]["parameters"]}

    assert names("/api/v1/time-entries/") == {
        "client",
        "automation",
        "status",
        "psa_user",
        "ticket",
        "run_id",
        "created_after",
        "created_before",
        "cursor",
        "page_size",
    }
    assert names("/api/v1/time-entries/export.csv") == names("/api/v1/time-entries/") - {
        "cursor",
        "page_size",
    }
    assert names("/api/v1/automation-runs/") == {
        "client",
        "automation",
        "decision",
        "reason_code",
        "ticket",
        "run_id",
        "received_after",
        "received_before",
        "cursor",
        "page_size",
    }
    entries = schema["paths"]["/api/v1/time-entries/"]["get"]
    page_size = next(p for p in entries["parameters"] if p["name"] == "page_size")
    assert (page_size["schema"]["minimum"], page_size["schema"]["maximum"]) == (1, 500)
    assert entries["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    export = schema["paths"]["/api/v1/time-entries/export.csv"]["get"]
    assert list(export["responses"]["200"]["content"]) == ["text/csv"]


def test_ingest_contract_is_documented(schema):
    create = schema["paths"]["/api/v1/automation-runs/"]["post"]
    documented = {"200", "201", "400", "401", "403", "409", "415", "429", "503"}
    assert set(create["responses"]) == documented
    report = schema["components"]["schemas"]["RunReportRequest"]
    assert set(report["required"]) == {
        "run_id",
        "automation",
        "client",
        "ticket_id",
        "started_by",
        "started_at",
        "completed_at",
    }
    run = schema["components"]["schemas"]["Run"]
    assert run["properties"]["entry"]["allOf"] == [{"$ref": "#/components/schemas/TimeEntry"}]
    assert run["properties"]["entry"]["nullable"] is True


def test_entry_waits_are_documented(schema):
    components = schema["components"]["schemas"]
    entry = components["TimeEntry"]["properties"]
    history = components["TimeEntryHistory"]["properties"]
    for props in (entry, history):
        waiting = props["waiting_for"]
        assert waiting["nullable"] is True
        assert "wait" in waiting["description"]
        values = set()
        for choice in waiting["oneOf"]:
            values.update(components[choice["$ref"].rsplit("/", 1)[1]]["enum"])
        assert values == {"budget", "concurrency", "retry_after", None}
        due = props["next_attempt_at"]
        assert (due["type"], due["format"], due["nullable"]) == ("string", "date-time", True)


def test_docs_page_renders_with_its_own_static_files(client):
    """Swagger UI comes from drf-spectacular-sidecar (our static files), not a CDN: the docs
    work on a machine without internet access."""
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
