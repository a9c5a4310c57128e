"""The PSA sandbox: local stand-ins for the PSA APIs, served by piadesk's own web server.

Off unless ``PIADESK_SANDBOX`` is on: only then does ``piadesk/urls.py`` mount it at
``/sandbox/`` (the app and its tables always exist; without the setting nothing is served).
It is for demos and end-to-end tests: piadesk's real HTTP client (the worker) posts to it over
real HTTP exactly as it would to a real PSA, and a person can look at what arrived. Accounts,
keys and members are fake test data, kept in plain text.

Layout: vendor-neutral models (``models.py``, a ``vendor`` column on each), demo data
(``seed.py``), one views module per vendor under its own URL prefix (``connectwise.py`` at
``/sandbox/connectwise/``; Autotask and HaloPSA go beside it), the ConnectWise ``conditions``
parser (``conditions.py``, pure), and the human page (``views.py``, ``/sandbox/``).

Connecting piadesk to it (ConnectWise)
    Seed an account (``psa.sandbox.seed.seed_connectwise()``: company ``demo``, keys
    ``sandbox-public-key`` / ``sandbox-private-key``) and give the piadesk connection the site
    URL ``http://127.0.0.1:<port>/sandbox/connectwise``. piadesk then calls
    ``{site}/login/companyinfo/{company}`` and ``{site}/{codebase}apis/3.0/...``, e.g.
    ``http://127.0.0.1:8000/sandbox/connectwise/v2025_1/apis/3.0/time/entries``.

What the ConnectWise stand-in enforces
    - ``GET login/companyinfo/{company}``: no auth; JSON ``null`` (200) for an unknown company.
    - API paths only under the account's codebase (``v2025_1/`` by default); another codebase
      is a 404, as after a ConnectWise upgrade.
    - Every API call: ``Authorization: Basic base64("{company}+{public}:{private}")`` matching
      an account, else 401 ``{"code": "Unauthorized", ...}``; then a non-empty ``clientId``
      header, else 400 ``{"code": "InvalidObject", "message": "clientId header is required"}``
      (undocumented; integrators report a 400 naming the clientId).
    - ``GET system/info``, ``GET system/members``, ``GET service/tickets/{id}`` (``fields``
      honoured; unknown ticket 404), ``GET``/``POST time/entries``.
    - Lists take ``conditions`` (grammar in ``conditions.py``; an unknown field or a syntax
      error is a 400 saying what is wrong), ``page`` (1-based), ``pageSize`` (default 25,
      at most 1000) and answer a ``Link: <...page=N+1...>; rel="next"`` header while more
      pages remain.
    - ``POST time/entries`` answers 201 with the created entry, ``billableOption`` stamped
      "Billable" when the client leaves it out (as the agreement would). It refuses with 400
      and the validation envelope ``{"code": "InvalidObject", "message": "TimeEntry object is
      invalid", "errors": [{"code", "message", "resource": "TimeEntry", "field"}]}``: a
      missing or unparseable ``timeStart``; a ``timeEnd`` that is unparseable or not after
      ``timeStart``; times without a zone (send UTC with ``Z``); **any time later than the
      sandbox's clock** ("Time entries cannot be entered in the future"); a ``chargeToType``
      outside Company/ServiceTicket/ProjectTicket/ChargeCode/Activity, or other than
      ServiceTicket (the only one the sandbox has); a ``chargeToId`` that is not a ticket of
      the account; a ``member`` (by ``id`` or ``identifier``, any case) that is missing,
      unknown or inactive; an unknown ``billableOption``. A body that is not JSON or not an
      object is a 400 too. Notes have no documented limit, so none is invented.
    - Unknown paths under ``/sandbox/connectwise/`` are 404 JSON.
    - ``SandboxAccount.options["clock_offset_seconds"]`` moves the sandbox's clock (negative:
      the PSA's clock is behind piadesk's) to exercise the client's clock-skew handling.

Sandbox-only conveniences (no auth)
    ``GET /sandbox/`` — HTML page: per vendor and account, each ticket, its owner and the
    time entries received (newest first), and the members.
    ``GET /sandbox/connectwise/entries.json`` — every ConnectWise entry received, as
    ``[{"id", "company", "ticket", "member", "timeStart", "timeEnd", "notes"}]``.
"""
