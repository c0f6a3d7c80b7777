"""The encrypted vault: sealed records, one per connection or client."""

from authsome.vault.crypto import MasterKey, load_master_key
from authsome.vault.store import ConnectionEntry, Vault, check_connection_name, check_provider_name

__all__ = [
    "ConnectionEntry",
    "MasterKey",
    "Vault",
    "check_connection_name",
    "check_provider_name",
    "load_master_key",
]
