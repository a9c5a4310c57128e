"""The history lists' search box: what staff type to find a run or an entry.

- identifiers pasted whole (run id, ticket number, PSA entry id): exact matches, which plain
  indexes serve (``HistoryModelAdmin``'s search);
- the starter's e-mail: exact and case-insensitive (ingest stores it lower-cased, so the
  ``run_started_by`` index serves it);
- a client's or an automation's name or key, in part ("contoso"): looked up in the tenant's
  clients and automations (small tables), then the history through the ``run_client_recent``
  and ``run_automation_recent`` indexes. A term that names too many of them is refused with a
  message rather than turned into a scan of millions of rows.

The list says what was searched, so that "0 results" is never a mystery.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

from timelogging.admin.base import HistoryModelAdmin, united
from timelogging.models import Automation, Client
from timelogging.selectors import visible_tenant_ids

# More names than this matching a term: too broad to be what someone looks for.
MAX_NAMED = 50


def _named(model: type[Model], term: str, request: HttpRequest) -> list[int]:
    """Ids of the visible clients (or automations) whose name or key contains ``term``."""
    rows = model._default_manager.filter(Q(name__icontains=term) | Q(key__icontains=term))
    tenants = visible_tenant_ids(request.user)
    if tenants is not None:
        rows = rows.filter(tenant_id__in=tenants)
    return list(rows.values_list("pk", flat=True)[: MAX_NAMED + 1])


class HistorySearchModelAdmin(HistoryModelAdmin):
    """A history of runs or entries, searched as the module says. ``search_fields``: the exact
    identifiers, ``exact_label`` what they are for people;
    ``run_path``: how a row reaches its run ("" for a run, "run__" for an entry)."""

    exact_label = ""
    run_path = ""

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        model = queryset.model
        manager = model._default_manager
        found = self.exact_matches(model, term)
        if "@" in term:
            found.append(
                manager.filter(**{f"{self.run_path}started_by": term.lower()})
                .order_by()
                .values("pk")
            )
            searched = f"{self.exact_label} and the starter's e-mail"
        else:
            for what, named_model in (("client", Client), ("automation", Automation)):
                ids = _named(named_model, term, request)
                if len(ids) > MAX_NAMED:
                    messages.warning(
                        request,
                        f"More than {MAX_NAMED} {what}s match “{term}”: their runs are not "
                        f"searched. Type more of the name, or use the {what} filter.",
                    )
                elif ids:
                    found.append(
                        manager.filter(**{f"{self.run_path}{what}_id__in": ids})
                        .order_by()
                        .values("pk")
                    )
            searched = f"{self.exact_label}, and client and automation names"
        messages.info(request, f"Searched {searched} for “{term}”.")
        return queryset.filter(pk__in=united(found)), False
