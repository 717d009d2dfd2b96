"""The public catalogue: search and filters over the published instruments, and the catalogue's
periodic releases (files, feed, the API)."""
