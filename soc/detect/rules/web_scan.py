"""Web scan: one source probing for what is not there to be found.

Scanners ask for admin panels, dotfiles (``.env``, ``.git/``), WordPress and
phpMyAdmin entry points, backups and dumps, CGI scripts and web shells on servers
that have none of them. A search engine's crawler following stale links gets many
404s too, but on ordinary page paths: only paths that look like probes count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from soc.detect.rules.base import WEB, Params, Rule, Settings, param
from soc.errors import ConfigError
from soc.events import WEB_SCAN

if TYPE_CHECKING:
    import numpy as np

    from soc.detect.rules.base import BatchView

#: What scanners look for (a path, query string excluded, matched case-insensitively).
PROBE: Final = re.compile(
    r"""
    (?:^|/)\.(?!well-known/)[^/]+        # dotfiles and dot-directories: .env .git/ .aws/
    | (?:^|/)(?:wp-(?:login|admin|content|includes|config)|xmlrpc\.php|wordpress)
    | (?:^|/)(?:php-?my-?admin|pma|myadmin|mysqladmin|adminer|sqlmanager|dbadmin)
    | (?:^|/)(?:admin|administrator|manager|console|cpanel|webadmin|siteadmin)(?:/|\.|$)
    | (?:^|/)(?:cgi-bin|cgi|fcgi-bin|scripts)/
    | (?:^|/)(?:phpinfo|info|test|shell|cmd|c99|r57|wso|webshell|eval-stdin)\.php
    | (?:^|/)(?:server-status|server-info|actuator|solr|jmx-console|invoker|hudson|boaform)
    | (?:^|/)(?:vendor/phpunit|HNAP1|owa/|autodiscover|ecp/|remote/login|\+CSCOE\+)
    | (?:^|/)(?:config|configuration|settings|database|db|backup|dump|sftp-config|web)
      \.(?:php|json|ya?ml|xml|ini|inc|sql|bak|old|zip)
    | \.(?:bak|backup|old|orig|save|swp|sql|sql\.gz|tar|tar\.gz|tgz|zip|rar|7z|gz|env|ini|log|
         asp|aspx|jsp|cgi|pl|sh|cfm|do|action)$
    | (?:^|/)(?:backup|backups|bak|old|dump|sql|db|database)(?:/|$)
    | \.\./ | %2e%2e | /etc/passwd
    """,
    re.IGNORECASE | re.VERBOSE,
)


def probing(path: str) -> bool:
    """True when ``path`` looks like a probe for something that should not be there."""
    return PROBE.search(path.partition("?")[0]) is not None


@dataclass(frozen=True, slots=True)
class WebScanParams(Params):
    """``[detect]`` keys of the web-scan rule."""

    web_scan_paths: int = param(
        10, "distinct probing paths answered with an error (4xx/5xx) to one key within a campaign"
    )

    def check(self, settings: Settings) -> None:
        if self.web_scan_paths > settings.max_distinct:
            raise ConfigError("must be at most max_distinct", where="web_scan_paths")


def hits(view: BatchView, params: WebScanParams) -> np.ndarray:
    """Where the campaign's distinct probing error paths reach ``web_scan_paths``."""
    return view.web & (view.distinct() >= params.web_scan_paths)


RULE: Final = Rule(
    name=WEB_SCAN,
    family=WEB,
    summary="at least `web_scan_paths` distinct paths that probe for what is not there "
    "(admin panels, dotfiles, WordPress, phpMyAdmin, backups, CGI, shells) answered "
    "with an error to one key within a campaign; a crawler's stale links do not count",
    technique=("T1595.003", "Active Scanning: Wordlist Scanning"),
    severity="low",
    actions=(
        "{block}",
        "Confirm that none of the probed paths exist or expose files (backups, .env, "
        "admin panels) on this server.",
    ),
    params=WebScanParams,
    hits=hits,
    keeps=probing,
    precedence=20,
)
