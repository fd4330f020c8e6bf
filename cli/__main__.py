"""``python -m cli`` runs the command line (the same as the ``hvci-triage`` script)."""

from cli import entry

if __name__ == "__main__":
    entry()
