"""``python -m vidseg_sstvos``."""

from vidseg_sstvos.cli import main

if __name__ == "__main__":
    main()
