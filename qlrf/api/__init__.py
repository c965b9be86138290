"""The HTTP API: a thin FastAPI layer over the AI orchestrator and the approval task store.

    app        create_app(): routers, error mapping, the local-mode header
    config     ApiSettings: host, port, tokens file, trusted local user (read when called)
    identity   who is calling: bearer tokens configured server-side, or a trusted local user
    asking     the production `ask` (qlrf.ai.orchestrator, imported lazily) and why it may be unavailable
    readiness  what /readyz checks: task database, a materialised warehouse day, the gate policy
    schemas    request and response bodies (pydantic), so OpenAPI documents every field
    limits     the request body cap (413), enforced while the body is read
    routes_*   one router per concern; each a few lines over qlrf/

Serve it with ``python -m qlrf.api`` (or ``make serve``).
"""
