"""The command line: ``commands`` (the subcommands), ``args`` (checked argument types),
``support`` (Ctrl-C, progress bars, tables)."""
