"""The `scratchrnn` command, and `python -m scratchrnn` (launch.main: a Ctrl-C while it loads is one line)."""
from .launch import main

if __name__ == "__main__":
    main()
