"""The command line: parsing, commands, and rendering (the only layer that prints)."""
