"""The JSON documents nsctl answers with, built from a snapshot: the same for the command
line, the service and snapshot files."""
