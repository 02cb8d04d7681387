"""Entry script for subprocess tests: ``python tests/_support/tiny_cli.py fit ...``."""

from tiny import main

if __name__ == "__main__":
    main()
