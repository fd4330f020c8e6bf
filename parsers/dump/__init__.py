"""Windows kernel crash dumps (``PAGEDU64``/``PAGEDUMP``): header, memory, loaded drivers, triage data."""
