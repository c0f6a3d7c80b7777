"""The per-run certificate authority; installed as authsome.certs."""
