"""The `bourse` command: the outermost layer (bourse -> flows -> tasks -> databourse)."""
