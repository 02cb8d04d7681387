"""``python -m vidseg_defvistr``."""

from vidseg_defvistr.cli import main

if __name__ == "__main__":
    main()
