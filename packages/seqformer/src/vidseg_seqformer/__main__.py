"""``python -m vidseg_seqformer`` = ``vidseg-seqformer``."""

from vidseg_seqformer.cli import main

if __name__ == "__main__":
    main()
