"""Disaster recovery you can prove: drill plans, the drill runner, drill records, failover simulation.

``records`` is the seam between the drill runner (which writes what a drill measured) and every
reader (readiness decay, failover simulation, history, the report): one table, ``dr_drills``.

    plans      DrillPlan: the hash-sealed YAML contract (scope, target, checks, steps, cleanup, objectives)
    scope      the plan's scope resolved against the normalised inventory
    authorise  the Rego ``dr`` decision and, where it asks, the approval of the plan hash (task store)
    runner     DrillRunner: steps with timeouts, measured RTO/RPO, cleanup in ``finally``, leftover sweep, journal
    drivers/   one drill driver per platform (aws, azure, gcp, vsphere) through its SDK
    service    what the CLI (``qlrf dr drill``) and ``dr_drill_job`` call: scope -> gate -> runner; dry run
"""
