"""The command line: the ``hvci-triage`` entry point and its subcommands, above the engine and the TUI."""
