"""Provider definitions: the registry, their schema and their routes."""

from authsome.providers.registry import Catalog, Registry, parse_definition

__all__ = ["Catalog", "Registry", "parse_definition"]
