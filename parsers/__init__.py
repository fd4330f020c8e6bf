"""Ingestion: bytes and text from debugger logs, pasted text and exports -> typed records with spans.

Imports only the standard library and ``msgspec`` (the records): the engine must run headless (batch, CI, a
debugger).
"""
