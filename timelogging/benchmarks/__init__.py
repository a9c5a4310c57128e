"""Synthetic history at scale (``seed_history``) and server-time measurements of the history
pages on it (``bench_history``). Tools for operators and developers; nothing here runs in the
web or worker processes."""
