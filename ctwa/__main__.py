"""Allow ``python -m ctwa``."""

from ctwa.cli.app import main

if __name__ == "__main__":
    main()
