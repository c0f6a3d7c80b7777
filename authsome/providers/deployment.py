"""Self-hosted deployments: the base URL a connection was made for, and the hosts it routes.

A definition's OAuth URLs may start with `{base_url}`, filled from
`oauth.base_url` (the public deployment, e.g. https://gitlab.com) or from
`authsome login --base-url` (a self-managed one). `api_url` lists the API
hosts of the default deployment. A connection to any other deployment routes
`self_hosted_api_url` instead, with its own base URL filled in, so a token
issued by a company's GitLab never travels to gitlab.com, and the other way round.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from authsome.errors import UsageError
from authsome.models import OAUTH_URL_FIELDS, Provider

PLACEHOLDER = "{base_url}"


def normalize(text: str) -> str:
    """`https://Host[:port][/path]`, no trailing slash; anything else is refused."""
    parts = urlsplit(text.strip())
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise UsageError(f"'{text}' is not an https:// URL.", "give the instance's address, for example --base-url https://gitlab.example.com")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UsageError(f"'{text}' carries user info, a query or a fragment.", "give only scheme, host, port and path")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"'{text}' has an invalid port.") from None
    host = parts.hostname.lower()
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port and port != 443 else "")
    return f"https://{netloc}{parts.path.rstrip('/')}"


def is_templated(provider: Provider) -> bool:
    oauth = provider.oauth
    return oauth is not None and any(PLACEHOLDER in (getattr(oauth, name) or "") for name in OAUTH_URL_FIELDS)


def is_default(provider: Provider, base_url: str | None) -> bool:
    """True when `base_url` is absent or names the definition's default deployment."""
    if not base_url:
        return True
    default = provider.oauth.base_url if provider.oauth else None
    return default is not None and normalize(default) == normalize(base_url)


def check_login(provider: Provider, base_url: str | None) -> str | None:
    """The base URL to log in with (normalized), or a UsageError saying why not."""
    if base_url is None:
        return None
    if not is_templated(provider):
        raise UsageError(f"'{provider.name}' has fixed endpoints; --base-url applies only to definitions with {PLACEHOLDER} URLs.",
                         f"run `authsome login {provider.name}` without --base-url")
    base = normalize(base_url)
    if api_url_routes(provider, base) is None:  # refuse a login whose token `run` could not route
        raise UsageError(f"'{provider.name}' does not say which hosts serve the API of {base}, so its token could not be used.",
                         missing_routes_hint(provider))
    return base


def missing_routes_hint(provider: Provider) -> str:
    return f"add self_hosted_api_url to the definition (`authsome inspect {provider.name}`; see docs/custom-providers.md)"


def api_url_routes(provider: Provider, base_url: str | None) -> tuple[str, ...] | None:
    """The `api_url` entries that receive this deployment's credential; None if the definition cannot say."""
    if is_default(provider, base_url):
        return provider.api_url
    if provider.self_hosted_api_url:
        base = normalize(base_url or "")
        return tuple(entry.replace(PLACEHOLDER, base) for entry in provider.self_hosted_api_url)
    if provider.oauth and provider.oauth.base_url is None:
        # Written for one instance only (no default deployment): api_url is that instance's.
        return provider.api_url
    return None
