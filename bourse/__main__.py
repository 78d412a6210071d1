"""`python -m bourse` runs the CLI."""

from bourse.cli import main

main()
