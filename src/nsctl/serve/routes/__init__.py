"""The API's routes, one module per concern; each ``router(service)`` returns a
FastAPI ``APIRouter`` whose routes close over the shared :class:`~..service.Service`.

- ``page``: the web page and its static files;
- ``reading``: health, status, the documents of ls/show/tree/pidtree/net/snapshot,
  metrics;
- ``diff``: a posted snapshot or an earlier model against now;
- ``events``: the server-sent event stream;
- ``pins``: pin and unpin, only on the unix socket and only with ``--allow-ops``.
"""
