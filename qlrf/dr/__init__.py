"""Disaster recovery you can prove: drill plans, the drill runner, drill records, failover simulation.

``records`` is the seam between the drill runner (which writes what a drill measured) and every
reader (readiness decay, failover simulation, history, the report): one table, ``dr_drills``.
"""
