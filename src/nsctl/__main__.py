"""``python -m nsctl``."""
from nsctl.cli.main import entry

entry()
