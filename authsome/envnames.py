"""Environment variable names with a meaning of their own: proxies, trust, loaders, the process.

`authsome run` sets the proxy and trust variables for the child, so a
definition must never export into them (a placeholder in `HTTPS_PROXY`
bypasses the proxy, one in `LD_PRELOAD` or `PATH` breaks or hijacks the
child). `reserved_problem` is the register-time check; the runner takes its
lists from here.
"""

from __future__ import annotations

import re

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
ALL_PROXY_VARS = ("ALL_PROXY", "all_proxy")
# CA bundles replacing the system's: the child's values point to the combined bundle.
COMBINED_BUNDLE_VARS = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO")
# Other tools' bundle variables: replaced only when the parent set them.
PARENT_ONLY_BUNDLE_VARS = ("AWS_CA_BUNDLE", "HTTPLIB2_CA_CERTS", "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
                           "NIX_SSL_CERT_FILE", "PIP_CERT")
# Additive variables (Node, Deno): our CA plus what the parent had there.
ADDITIVE_CA_VARS = ("NODE_EXTRA_CA_CERTS", "DENO_CERT")

_RESERVED = {
    # the process and the shell
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "TERM", "TMPDIR", "TMP", "TEMP", "IFS",
    "ENV", "BASH_ENV", "CDPATH", "LANG", "LANGUAGE", "TZ", "HOSTNAME", "MAIL", "PROMPT_COMMAND",
    "SHELLOPTS", "BASHOPTS", "HISTFILE", "EDITOR", "VISUAL", "PAGER", "BROWSER",
    # proxies and trust (besides the lists above)
    "NO_PROXY", "NODE_USE_ENV_PROXY", "SSL_CERT_DIR", "GIT_SSL_CAPATH", "NODE_TLS_REJECT_UNAUTHORIZED",
    "DENO_TLS_CA_STORE", "SSLKEYLOGFILE", "PYTHONHTTPSVERIFY", "OPENSSL_CONF", "OPENSSL_ENGINES",
    # loaders and interpreters
    "NODE_OPTIONS", "NODE_PATH", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYOPT", "RUBYLIB", "CLASSPATH",
    "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "GODEBUG", "GOFLAGS", "GCONV_PATH", "LOCPATH",
    "NLSPATH", "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN",
    *PROXY_VARS, *ALL_PROXY_VARS, *COMBINED_BUNDLE_VARS, *PARENT_ONLY_BUNDLE_VARS, *ADDITIVE_CA_VARS,
}
_RESERVED_PREFIXES = ("LD_", "DYLD_", "PYTHON", "GIT_", "SSH_", "XDG_", "LUA_", "MALLOC_", "GEM_", "BUNDLE_",
                      "NPM_CONFIG_", "GLOBAL_AGENT_", "AUTHSOME_", "BASH_FUNC_")


def reserved_problem(name: str) -> str | None:
    """Why `name` may not carry a credential's placeholder, or None."""
    upper = name.upper()
    if upper in {n.upper() for n in _RESERVED} or upper.endswith("_PROXY"):
        return f"{name} is a process, proxy or trust variable; a placeholder there would break or redirect the child"
    prefix = next((p for p in _RESERVED_PREFIXES if upper.startswith(p)), None)
    if prefix:
        return f"{name} starts with {prefix}, which loaders, tools or authsome itself read"
    return None


def env_prefix(provider_name: str) -> str:
    """`x` -> `X`, `google-ads` -> `GOOGLE_ADS`: the prefix of CI variables (`X_CLIENT_ID`)."""
    return re.sub(r"[^A-Z0-9]", "_", provider_name.upper())
