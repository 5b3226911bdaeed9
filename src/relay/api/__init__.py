"""relay's HTTP side (DESIGN `relay.api`), served by uvicorn inside `relay serve` on
`[http] listen`.

    app           create_app: the FastAPI application; errors answered as plain text
    unsubscribe   the public one-click unsubscribe endpoint `/u/<token>` (RFC 8058)
    server        HttpServer: uvicorn in the node's event loop, on sockets the node bound

Import from the modules: the package imports nothing, so that `relay tokens` (relay.api.auth)
does not load the whole application.
"""
