"""The `bourse` commands, one module per concern; `bourse.cli` assembles them into the CLI."""
