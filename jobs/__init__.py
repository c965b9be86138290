"""What runs: asset jobs (one per partitioning, jobs/assets.py) and the remediation op jobs
(jobs/remediation.py: they change machines, not data, so they are ops launched by sensors).

Jobs live below pipelines/ and beside sensors/, so sensors and schedules import them and
pipelines/definitions.py collects them, with no import cycle.
"""
