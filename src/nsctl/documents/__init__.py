"""The JSON documents nsctl answers with, built from a snapshot (and what namespaces
see): the same for the command line, the service and snapshot files.  One module per
document (``ls``, ``show``, ``tree``, ``pidtree``, ``net``, ``pid``, ``diff``,
``snapshot``); plain functions to dicts, no argument parsing, no printing."""
