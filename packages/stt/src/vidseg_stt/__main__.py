"""``python -m vidseg_stt``."""

from vidseg_stt.cli import main

if __name__ == "__main__":
    main()
