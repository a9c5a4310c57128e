"""Write paths, one module per concern. Keyword-only, typed functions named ``<noun>_<verb>``.

- ``decision``: pure functions deciding whether and how long a run is logged.
- ``ingest``: recording a reported run, its decision and its entry (and queueing the post).
- ``posting``: posting an entry to the PSA (the worker's job).
- ``delivery``: delivery states, waits, pause/resume, the sweep.
- ``operations``: staff operations on entries not posted (retry, re-decide, discard).
- ``connections``: saving PSA connections with encrypted secrets; building backends; testing
  a connection from the admin.
- ``psa_users``: the PSA's users for the admin's pickers (cached briefly) and checks.
"""
