"""``python -m qlrf.api``: serve the API with uvicorn on QLRF_API_HOST:QLRF_API_PORT (127.0.0.1:8600).

Configuration errors (a tokens file others can read, a trusted local user on a public address, a
bad port) stop the server before it listens, with one line naming the variable.
"""

from __future__ import annotations

import sys

from qlrf.api.config import ApiSettings
from qlrf.api.identity import Authenticator


def main() -> int:
    try:  # configuration first: a refusal costs no framework import
        api = ApiSettings.from_env()
        identity = Authenticator.from_settings(api)
        import uvicorn

        from qlrf.api.app import create_app

        app = create_app(identity=identity)
    except ValueError as exc:  # IdentityConfigError included: one line naming the variable
        print(f"qlrf api: {exc}", file=sys.stderr)
        return 2
    mode = "trusted local user" if app.state.authenticator.local_mode else "bearer tokens only"
    print(f"qlrf api: http://{api.host}:{api.port} (docs at /docs; identity: {mode})", file=sys.stderr, flush=True)
    uvicorn.run(app, host=api.host, port=api.port, server_header=False, proxy_headers=False, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
