"""``python -m connector`` is the same as ``karla-connector``."""

from connector.cli import main

main()
