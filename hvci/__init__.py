"""The engine: model, knowledge base, correlation, classification, image rules, report writers, CLI."""
