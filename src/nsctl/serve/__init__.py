"""``nsctl serve``: the namespace model over HTTP.

- :mod:`.state`: the cached model, fed by a refresher process, and the worker
  process for views and pins (why processes: see its docstring);
- :mod:`.child`: what those two processes run;
- :mod:`.documents`: the JSON documents (the CLI's own ``--json`` documents);
- :mod:`.app`: the routes; :mod:`.security`: token, peer credentials, limits;
- :mod:`.metrics`: the Prometheus text format.

Nothing here is imported unless ``nsctl serve`` runs (FastAPI is not cheap).
"""
