"""``python -m cli`` runs the command line (the same as the ``hvci-triage`` script)."""

from cli import main

if __name__ == "__main__":
    main()
