"""The image pipeline: header rules and call-site analysis of driver images (``scan``)."""
