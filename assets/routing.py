"""Where a step runs under the Celery profile, and which concurrency pool it draws a slot from.

Kept apart from the stage modules so that routing is one small, reviewable table (deploy/celery/README
section of the project README) and the stage modules only name the class of work they do.

Two classes of work, two queues:

* ``qlrf-api``: steps that call a cloud's API (``discover_scope``, one per batch of scopes of the
  discovery fan-out in assets/discovery.py). They wait on the network, so a worker that
  serves only this queue can run many of them at once, and they draw from the ``qlrf_cloud_api``
  concurrency pool so that however many runs are in flight (a backfill of 30 days x 4 clouds), at
  most the pool's limit call the clouds at the same time.
* everything else goes to the executor's default queue (``QLRF_CELERY_QUEUE``, ``qlrf``): CPU-bound
  DuckDB/Arrow scoring, one step per core.

Per-cloud limits cannot be op tags: one op serves every platform (the platform is a partition
dimension), so the per-cloud limit is a run tag limit on ``dagster/partition/platform`` in
deploy/celery/dagster.yaml (one run per cloud at a time), and the pool bounds all clouds together.
"""

from __future__ import annotations

QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG (not imported: optional package)
API_QUEUE = "qlrf-api"
DEFAULT_QUEUE = "qlrf"  # the Celery app's task_default_queue unless QLRF_CELERY_QUEUE says otherwise
API_POOL = "qlrf_cloud_api"

# op_tags of a step that calls a cloud API (under any other executor the tag is inert).
API_OP_TAGS: dict[str, str] = {QUEUE_TAG: API_QUEUE}

# The queues a worker must serve for every step of the daily graph to find one.
ALL_QUEUES = (DEFAULT_QUEUE, API_QUEUE)
