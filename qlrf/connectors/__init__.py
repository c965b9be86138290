"""Live discovery connectors, one module per platform, plain Python over each platform's SDK.

Every connector exposes
    discover(config, *, mapping: TagMapping, discovered_at: datetime, progress=None) -> Normalised
and yields exactly the rows the file normalisers produce (it reuses them), so the rest of the graph
cannot tell a live estate from an export. A scope (region, account, subscription, project, vCenter)
that fails is recorded in Normalised.failed_scopes as {"scope": ..., "reason": ...}; the other
scopes still count. Extra discovery facts (images, scaling groups) go to Normalised.facts.
"""
