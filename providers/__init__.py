"""Bundled provider definitions (JSON data) and their schema; installed as authsome.catalog."""
