"""Command-line interface: `bin/cardsorter <subcommand>`."""
