"""``python -m vidseg_spvos``."""

from vidseg_spvos.cli import main

if __name__ == "__main__":
    main()
