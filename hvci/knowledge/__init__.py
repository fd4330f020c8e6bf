"""The knowledge base: data files beside this module, their loader (``kb``) and decoders (``decode``)."""
