"""The engine: model, knowledge base, the log and image pipelines, report writers."""
