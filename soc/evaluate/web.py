"""An nginx access log (combined format): visitors, crawlers, a basic-auth area, and attacks.

The site has pages, assets, an admin area behind HTTP basic authentication
(``/admin/``) and a history: old posts, products and tags that are gone but
still linked from elsewhere, so search-engine crawlers following stale links get
many distinct 404s on ordinary page paths. Browsers reaching ``/admin/`` are
challenged first (a 401 with no user name) and then send the user's
credentials. The attacks: scanners probing for what is not there, and a
basic-auth brute force.
"""

from __future__ import annotations

import random
from typing import Final

from soc.evaluate.people import user_names
from soc.evaluate.traffic import ACCESS_LOG, DAY, HOUR, Traffic, clf_stamp

BROWSERS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
)
CRAWLERS: Final = (
    ("Googlebot", "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    ("bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    ("YandexBot", "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)"),
    ("DuckDuckBot", "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)"),
    ("Applebot", "Mozilla/5.0 (compatible; Applebot/0.1; +http://www.apple.com/go/applebot)"),
    ("AhrefsBot", "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
)
PAGES: Final = (
    "/", "/about/", "/contact/", "/pricing/", "/docs/", "/docs/install/", "/docs/configuration/",
    "/docs/faq/", "/blog/", "/blog/2025/11/hardening-ssh/", "/blog/2025/10/backups-that-restore/",
    "/blog/2025/09/postgres-upgrades/", "/blog/2025/08/on-call-without-tears/", "/products/",
    "/products/4711", "/products/4712", "/products/4730", "/careers/", "/privacy/", "/terms/",
)  # fmt: skip
ASSETS: Final = (
    "/css/site.css", "/js/app.js", "/favicon.ico", "/img/logo.svg", "/img/hero.webp",
    "/fonts/inter.woff2",
)  # fmt: skip
#: Paths iPhones and iPads ask every site for; this one has neither.
TOUCH_ICONS: Final = ("/apple-touch-icon-precomposed.png", "/apple-touch-icon.png")
_WORDS: Final = (
    "kubernetes", "backup", "nginx", "postgres", "release", "security", "monitoring", "linux",
    "docker", "terraform", "python", "rust", "migration", "scaling", "incident", "logging",
    "caching", "tls", "dns", "email", "storage", "networking", "ci", "testing", "performance",
)  # fmt: skip
SCAN_PATHS: Final = (
    "/.env", "/.env.production", "/.env.local", "/.git/config", "/.git/HEAD", "/.svn/entries",
    "/.DS_Store", "/.aws/credentials", "/.vscode/sftp.json", "/sftp-config.json", "/.htpasswd",
    "/wp-login.php", "/wp-admin/", "/xmlrpc.php", "/wp-config.php.bak", "/wp-config.php~",
    "/wp-content/plugins/wp-file-manager/readme.txt", "/wp-includes/wlwmanifest.xml",
    "/phpmyadmin/", "/phpMyAdmin/", "/pma/", "/myadmin/", "/mysql/", "/adminer.php",
    "/admin/", "/admin.php", "/administrator/", "/login.action", "/manager/html",
    "/backup.zip", "/backup.tar.gz", "/backup.sql", "/db.sql", "/dump.sql", "/site.zip",
    "/config.php.bak", "/config.json", "/config.yml", "/app/config/parameters.yml",
    "/cgi-bin/luci", "/cgi-bin/test.cgi", "/cgi-bin/.%2e/.%2e/.%2e/bin/sh",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php", "/_ignition/execute-solution",
    "/phpinfo.php", "/info.php", "/test.php", "/shell.php", "/server-status", "/actuator/env",
    "/actuator/health", "/solr/admin/info/system", "/boaform/admin/formLogin", "/HNAP1/",
    "/owa/auth/logon.aspx", "/remote/login", "/api/v1/pods", "/console/", "/druid/index.html",
    "/jenkins/login", "/telescope/requests", "/debug/default/view", "/.well-known/security.txt",
    "/geoserver/web/", "/setup.cgi", "/storage/logs/laravel.log", "/containers/json",
)  # fmt: skip
SCANNER_AGENTS: Final = (
    "Mozilla/5.0 zgrab/0.x",
    "python-requests/2.32.3",
    "Go-http-client/1.1",
    "Mozilla/5.0 (l9scan/2.0.0; +https://leakix.net)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/89.0 "
    "Safari/537.36",
)
#: nginx's own error pages (and the empty answers), in bytes.
_ERROR_PAGES: Final = {204: 0, 301: 162, 304: 0, 401: 179, 403: 153, 404: 153}
#: Where basic authentication guards the site.
ADMIN: Final = "/admin/"
_ADMIN_PAGES: Final = ("/admin/", "/admin/stats", "/admin/users", "/admin/api/metrics")


def access_line(
    t: float,
    ip: str,
    path: str,
    status: int,
    agent: str,
    *,
    user: str = "-",
    method: str = "GET",
    size: int = 0,
    referer: str = "-",
) -> str:
    """One nginx ``combined`` line."""
    return (
        f'{ip} - {user} [{clf_stamp(t)}] "{method} {path} HTTP/1.1" {status} {size} '
        f'"{referer}" "{agent}"'
    )


class Site:
    """One web server's access log in a scenario's traffic, and the site's stale links."""

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic
        rng = traffic.rng
        stale: dict[str, None] = {}
        while len(stale) < 400:
            word, other = rng.choice(_WORDS), rng.choice(_WORDS)
            year = rng.randint(2016, 2022)
            stale[
                rng.choice(
                    (
                        f"/blog/{year}/{word}-{other}/",
                        f"/blog/{year}/{rng.randint(1, 12):02}/{word}-notes/",
                        f"/products/{rng.randint(1000, 3999)}",
                        f"/tag/{word}/",
                        f"/category/{word}/page/{rng.randint(2, 9)}/",
                        f"/docs/v{rng.randint(1, 3)}/{word}/",
                    )
                )
            ] = None
        self.stale = list(stale)

    def hit(
        self,
        campaign: int,
        t: float,
        ip: str,
        path: str,
        status: int,
        agent: str,
        *,
        user: str = "-",
        method: str = "GET",
        referer: str = "-",
    ) -> None:
        """One request's line."""
        size = _ERROR_PAGES.get(status) or self.traffic.rng.randint(300, 60_000)
        line = access_line(
            t, ip, path, status, agent, user=user, method=method, size=size, referer=referer
        )
        self.traffic.add(ACCESS_LOG, t, campaign, line, address=ip)

    # --- legitimate -------------------------------------------------------------------
    def visitors(self, start: float, days: float, per_hour: float) -> None:
        """People reading the site: a page, its assets, a few more pages; iPhones ask for icons."""
        traffic = self.traffic
        rng = traffic.rng
        cid = traffic.campaign("web visitors", None, legitimate=True)
        regulars = [traffic.addresses.any(ipv6_share=0.3, public_share=0.1) for _ in range(40)]
        t = start
        end = start + days * DAY
        while True:
            hour = (t - start) % DAY / HOUR
            rate = per_hour * (1.0 if 7 <= hour <= 22 else 0.25)
            t += rng.expovariate(rate / HOUR)
            if t >= end:
                break
            ip = (
                rng.choice(regulars)
                if rng.random() < 0.3
                else traffic.addresses.any(ipv6_share=0.3, public_share=0.1)
            )
            self._visit(cid, t, ip, rng)

    def _visit(self, cid: int, t: float, ip: str, rng: random.Random) -> None:
        agent = rng.choice(BROWSERS)
        referer = rng.choice(("-", "https://www.google.com/", "https://duckduckgo.com/"))
        for n in range(rng.choices((1, 2, 3, 4, 6), (40, 25, 15, 12, 8))[0]):
            page = rng.choice(PAGES)
            self.hit(cid, t, ip, page, 200, agent, referer=referer)
            if n == 0:
                for asset in ASSETS:
                    t += rng.uniform(0.02, 0.3)
                    status = 304 if rng.random() < 0.3 else 200
                    self.hit(cid, t, ip, asset, status, agent, referer="https://www.example.com/")
                if "iPhone" in agent:
                    for icon in TOUCH_ICONS:
                        self.hit(cid, t + 0.5, ip, icon, 404, agent)
            elif rng.random() < 0.02:
                self.hit(cid, t + 1, ip, page.rstrip("/") + "s/", 404, agent)  # a mistyped link
            referer = "https://www.example.com" + page
            t += rng.uniform(8, 120)

    def crawlers(self, start: float, days: float, n: int) -> None:
        """``n`` search-engine crawlers, some following stale links to many distinct 404s."""
        traffic = self.traffic
        rng = traffic.rng
        for name, agent in CRAWLERS[:n]:
            cid = traffic.campaign(f"crawler {name}", None, legitimate=True)
            addresses = [traffic.addresses.public() for _ in range(rng.randint(1, 3))]
            # each crawler knows its own share of the old links
            stale = rng.sample(self.stale, rng.randint(60, 250))
            per_day = rng.randint(200, 900)
            for day in range(int(days)):
                day_start = start + day * DAY
                times = sorted(day_start + rng.uniform(0, DAY) for _ in range(per_day))
                for i, at in enumerate(times):
                    ip = rng.choice(addresses)
                    t = at
                    if i % 150 == 0:
                        self.hit(cid, t, ip, "/robots.txt", 200, agent)
                        t += 0.5
                    roll = rng.random()
                    if roll < 0.3:
                        self.hit(cid, t, ip, rng.choice(stale), 404, agent)
                    elif roll < 0.34:
                        self.hit(cid, t, ip, rng.choice(PAGES).rstrip("/"), 301, agent)
                    elif roll < 0.36:
                        self.hit(cid, t, ip, "/sitemap.xml", 200, agent)
                    else:
                        status = 304 if rng.random() < 0.2 else 200
                        self.hit(cid, t, ip, rng.choice(PAGES + ASSETS), status, agent)

    def admins(self, start: float, days: float, n: int) -> None:
        """``n`` staff using ``/admin/``: challenged first, now and then a wrong password."""
        traffic = self.traffic
        rng = traffic.rng
        for user in user_names(rng, n):
            cid = traffic.campaign(f"web admin {user}", None, legitimate=True)
            ip = traffic.addresses.any()
            agent = rng.choice(BROWSERS)
            t = start
            for day in range(int(days)):
                visits = [rng.uniform(8, 18.5) * HOUR for _ in range(rng.randint(0, 3))]
                for at in sorted(visits):
                    # a new browser session: after the last one ended, challenged again
                    t = max(start + day * DAY + at, t + rng.uniform(600, 3600))
                    self.hit(cid, t, ip, ADMIN, 401, agent)  # the browser asks, the user types
                    t += rng.uniform(4, 15)
                    if rng.random() < 0.1:
                        for _ in range(rng.choices((1, 2), (75, 25))[0]):
                            self.hit(cid, t, ip, ADMIN, 401, agent, user=user)
                            t += rng.uniform(4, 12)
                    for page in rng.sample(_ADMIN_PAGES, rng.randint(1, 4)):
                        self.hit(cid, t, ip, page, 200, agent, user=user)
                        t += rng.uniform(5, 240)

    # --- attacks ----------------------------------------------------------------------
    def scan(self, campaign: int, t: float, ip: str) -> None:
        """A scanner probing tens to hundreds of paths that are not there, a few per second."""
        rng = self.traffic.rng
        agent = rng.choice(SCANNER_AGENTS)
        paths = rng.sample(SCAN_PATHS, rng.randint(40, len(SCAN_PATHS)))
        for _ in range(rng.randint(0, 80)):  # a wordlist of backup names
            paths.append(f"/{rng.choice(_WORDS)}{rng.choice(('.zip', '.sql', '.tar.gz', '.bak'))}")
        self.hit(campaign, t, ip, "/", 200, agent)
        for path in paths:
            t += rng.expovariate(4.0)
            if path == ADMIN:
                status = 401
            elif path.startswith(("/.git", "/.ht", "/.env", "/server-status")):
                status = 403
            else:
                status = 404
            method = "POST" if rng.random() < 0.05 else "GET"
            self.hit(campaign, t, ip, path, status, agent, method=method)

    def auth_brute_force(self, campaign: int, t: float, ip: str) -> None:
        """A basic-auth brute force on ``/admin/``: hundreds of guesses, a few per second."""
        rng = self.traffic.rng
        users = ("admin", "administrator", "root", "test", "webmaster", "user", "manager")
        for _ in range(rng.randint(100, 500)):
            t += rng.expovariate(3.0)
            self.hit(campaign, t, ip, ADMIN, 401, "Mozilla/4.0 (Hydra)", user=rng.choice(users))


__all__ = ["ADMIN", "BROWSERS", "CRAWLERS", "SCAN_PATHS", "Site", "access_line"]
