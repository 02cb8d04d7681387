"""The ``vidseg`` command and its subcommands (one module each)."""
