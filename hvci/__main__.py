"""``python -m hvci`` runs the command line."""

from hvci.cli import main

if __name__ == "__main__":
    main()
