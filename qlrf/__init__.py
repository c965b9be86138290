"""Resilience Fabric domain core: plain Python, no Dagster imports.

Dagster assets call into this package so the domain logic stays fast to test and usable from the
`qlrf` command without an orchestrator.
"""

__version__ = "0.1.0"
