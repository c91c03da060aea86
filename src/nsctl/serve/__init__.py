"""``nsctl serve``: the namespace model over HTTP.

- :mod:`.config`: the settings, checked together (:class:`~.config.Config`);
- :mod:`.run`: :func:`~.run.run` serves a Config: sockets, launcher, uvicorn, signals;
- :mod:`.state`: the cached model, fed by a refresher process, and the worker
  process for views and pins (why processes: see its docstring);
- :mod:`.child`: what those two processes run;
- :mod:`.documents`: the JSON documents (the CLI's own ``--json`` documents);
- :mod:`.app`: the routes; :mod:`.security`: token, peer credentials, limits;
- :mod:`.metrics`: the Prometheus text format.

This package itself holds only the well-known addresses, so that ``nsctl serve
--help`` can name them without importing the rest (FastAPI is not cheap).
"""

DEFAULT_PORT = 9477
DEFAULT_UNIX = "/run/nsctl/serve.sock"
