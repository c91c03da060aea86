"""``python -m nsctl``."""
from nsctl.cli.main import main

raise SystemExit(main())
