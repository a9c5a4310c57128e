"""API views: thin. The write path is ``services.ingest.run_ingest``; the history reads come
from ``selectors`` (scoped to the key's tenant), filtered by ``api.filters`` and paginated by
``api.pagination``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from timelogging.api.auth import request_tenant
from timelogging.api.filters import AutomationRunFilter, TimeEntryFilter
from timelogging.api.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    AutomationRunPagination,
    TimeEntryPagination,
)
from timelogging.api.serializers import (
    RUN_ID_PATTERN,
    ErrorSerializer,
    RunHistorySerializer,
    RunReportSerializer,
    RunSerializer,
    TimeEntryHistorySerializer,
)
from timelogging.exports import time_entries_csv_response
from timelogging.models import AutomationRun, TimeEntry
from timelogging.selectors import (
    automation_runs_history,
    time_entries_history,
    visible_tenant_ids,
)
from timelogging.services.ingest import RunConflict, RunRace, run_ingest

UNAUTHORIZED = OpenApiResponse(ErrorSerializer, description="Missing, unknown or revoked API key.")
INVALID_QUERY = OpenApiResponse(
    ErrorSerializer, description="Invalid filter, page size or cursor: the reasons per parameter."
)
LIST_DESCRIPTION = (
    f"Newest first, {DEFAULT_PAGE_SIZE} per page by default (`page_size`, at most "
    f"{MAX_PAGE_SIZE}). Follow `next` for older rows: the cursor stays stable while new rows "
    "arrive. The filters combine (AND); `*_after` is inclusive, `*_before` exclusive."
)
RUNS_TAG = "automation runs"
ENTRIES_TAG = "time entries"


class AutomationRunViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = RunSerializer
    # The model for the schema generator only: get_queryset() scopes every read to the tenant.
    queryset = AutomationRun.objects.none()
    lookup_field = "run_id"
    lookup_value_regex = RUN_ID_PATTERN.strip("^$")
    filter_backends = [DjangoFilterBackend]
    filterset_class = AutomationRunFilter
    pagination_class = AutomationRunPagination

    def get_queryset(self) -> QuerySet[AutomationRun]:
        return automation_runs_history(tenant_ids=visible_tenant_ids(self.request.auth))

    def get_serializer_class(self) -> type[RunSerializer]:
        return RunHistorySerializer if self.action == "list" else RunSerializer

    @extend_schema(
        request=RunReportSerializer,
        responses={
            201: RunSerializer,
            200: OpenApiResponse(RunSerializer, description="Already received (a retry)."),
            400: OpenApiResponse(ErrorSerializer, description="Invalid input: field-level errors."),
            401: UNAUTHORIZED,
            403: OpenApiResponse(ErrorSerializer, description="A read-only API key."),
            409: OpenApiResponse(
                ErrorSerializer, description="run_id already used for different content."
            ),
            415: OpenApiResponse(ErrorSerializer, description="The body is not JSON."),
            429: OpenApiResponse(
                ErrorSerializer,
                description="More requests than the key's rate: send it again after the "
                "Retry-After header's seconds.",
            ),
            503: OpenApiResponse(
                ErrorSerializer,
                description="The database is unavailable for a moment (a restart or a "
                "failover); nothing was saved: send the same run again after the Retry-After "
                "header's seconds.",
            ),
        },
        summary="Report a finished automation run",
        tags=[RUNS_TAG],
    )
    def create(self, request, *args, **kwargs):
        report = RunReportSerializer(data=request.data)
        report.is_valid(raise_exception=True)
        try:
            result = run_ingest(tenant=request_tenant(request), data=report.validated_data)
        except RunConflict as exc:
            return Response(
                {"detail": str(exc), "errors": {"run_id": [str(exc)]}},
                status=status.HTTP_409_CONFLICT,
            )
        except RunRace as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(
            RunSerializer(result.run).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        responses={
            200: RunSerializer,
            401: UNAUTHORIZED,
            404: OpenApiResponse(ErrorSerializer, description="No such run for this key's tenant."),
        },
        summary="A run's decision and entry",
        tags=[RUNS_TAG],
    )
    def retrieve(self, request, run_id: str):
        run = get_object_or_404(self.get_queryset(), run_id=run_id)
        return Response(RunSerializer(run).data)

    @extend_schema(
        responses={200: RunHistorySerializer(many=True), 400: INVALID_QUERY, 401: UNAUTHORIZED},
        summary="The runs reported, newest first",
        description=LIST_DESCRIPTION,
        tags=[RUNS_TAG],
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


if TYPE_CHECKING:
    # What the mixin is mixed into, for the type checker only.
    _HistoryViewBase = generics.GenericAPIView[TimeEntry]
else:
    _HistoryViewBase = object


# The tenant's time entries, filtered by the query parameters: the list and the export.
# (A comment, not a docstring: drf-spectacular would show a docstring in both operations.)
class TimeEntryHistoryMixin(_HistoryViewBase):
    queryset = TimeEntry.objects.none()  # the schema generator's model; see get_queryset
    filter_backends = [DjangoFilterBackend]
    filterset_class = TimeEntryFilter

    def get_queryset(self) -> QuerySet[TimeEntry]:
        return time_entries_history(tenant_ids=visible_tenant_ids(self.request.auth))


class TimeEntryViewSet(TimeEntryHistoryMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = TimeEntryHistorySerializer
    pagination_class = TimeEntryPagination

    @extend_schema(
        responses={
            200: TimeEntryHistorySerializer(many=True),
            400: INVALID_QUERY,
            401: UNAUTHORIZED,
        },
        summary="The time entries, newest first",
        description=LIST_DESCRIPTION,
        tags=[ENTRIES_TAG],
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)


class FirstRendererNegotiation(BaseContentNegotiation):
    """The export answers CSV whatever the Accept header says, and its errors in JSON (the
    first renderer): a client asking for text/csv must get the file, not a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None


class TimeEntryExportView(TimeEntryHistoryMixin, generics.GenericAPIView):
    content_negotiation_class = FirstRendererNegotiation
    pagination_class = None

    @extend_schema(
        filters=True,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A CSV attachment (UTF-8, a header row, newest first). Cells that "
                "a spreadsheet would run as a formula (= + - @) start with an apostrophe.",
            ),
            400: INVALID_QUERY,
            401: UNAUTHORIZED,
        },
        summary="Export the time entries as CSV",
        description="The time entries that the same filters select in the list, all of "
        "them (no pages), newest first, streamed.",
        operation_id="v1_time_entries_export_csv",
        tags=[ENTRIES_TAG],
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        return time_entries_csv_response(self.filter_queryset(self.get_queryset()))
