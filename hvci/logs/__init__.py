"""The log pipeline: records from the parsers are correlated into incidents, classified and resolved."""
