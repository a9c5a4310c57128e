"""API views: thin; the write path is ``services.ingest.run_ingest``."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from timelogging.api.auth import request_tenant
from timelogging.api.serializers import RUN_ID_PATTERN, RunReportSerializer, RunSerializer
from timelogging.models import AutomationRun
from timelogging.services.ingest import RunConflict, run_ingest


class AutomationRunViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    serializer_class = RunSerializer
    lookup_field = "run_id"
    lookup_value_regex = RUN_ID_PATTERN.strip("^$")

    def get_queryset(self):
        return AutomationRun.objects.filter(tenant=request_tenant(self.request)).select_related(
            "entry"
        )

    @extend_schema(
        request=RunReportSerializer,
        responses={
            201: RunSerializer,
            200: OpenApiResponse(RunSerializer, description="Already received (a retry)."),
            400: OpenApiResponse(description="Invalid input: field-level errors."),
            401: OpenApiResponse(description="Missing, unknown or revoked API key."),
            409: OpenApiResponse(description="run_id already used for different content."),
        },
        summary="Report a finished automation run",
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
        return Response(
            RunSerializer(result.run).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(responses={200: RunSerializer}, summary="A run's decision and entry")
    def retrieve(self, request, run_id: str):
        run = get_object_or_404(self.get_queryset(), run_id=run_id)
        return Response(RunSerializer(run).data)
