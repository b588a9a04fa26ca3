"""Migration scripts of the OAuth server."""
