"""The HTTP gateway: the one entry point for browsers, client apps and other systems."""
