"""The Textual front end. Only presentation lives here; all logic is in the engine packages."""
