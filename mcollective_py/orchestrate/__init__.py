"""Rolling, health-gated, resumable deploys (``mco-py deploy``).

Layout: ``plan.py`` (pure planner), ``fleet.py`` (the narrow seam to the nodes), ``run.py``
(executor: per-node state machine, gates, capacity guard, rollback), ``journal.py`` (append-only
run journal and lease lock), ``events.py`` (the hook contract every subscriber implements).
Nothing here imports pika, a connector or a security provider, prints, or exits.
"""
