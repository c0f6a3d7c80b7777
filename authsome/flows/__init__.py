"""Login flows and token refresh (the only users of authlib)."""
