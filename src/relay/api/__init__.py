"""relay's HTTP side (DESIGN `relay.api`), served by uvicorn inside `relay serve` on
`[http] listen`.

    app           create_app: the FastAPI application; errors answered as plain text
    unsubscribe   the public one-click unsubscribe endpoint `/u/<token>` (RFC 8058)
    server        HttpServer: uvicorn in the node's event loop, on sockets the node bound
"""

from relay.api.app import create_app
from relay.api.server import HttpServer, bind

__all__ = ["HttpServer", "bind", "create_app"]
