"""Parameter recognition: the sites, environments, platforms, families, packages, dates, asset ids and
counts an operator's intent names, so the offline router can scope its tool calls without a model.

Names the warehouse knows (sites, image families, packages) come from a :class:`Vocabulary` of the
day; the rest (environments, platforms) are fixed synonyms. A word that *looks* like a site or a
family but is not in the vocabulary is reported, never guessed: the answer then says "I don't know
site X" and proposes no task, because a task scoped to a misread site would target the wrong VMs.
A close misspelling of a known site ("syd01", "sydny1") is accepted only when exactly one known
site is that close; two candidates make it ambiguous, which is refused the same way.

Every recognised entity also yields a span, so :func:`masked` can replace it by a placeholder token
before routing: "syd1" and "fra2" then route the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from qlrf import sql
from qlrf.warehouse import Warehouse

# Placeholder tokens: what an entity becomes before vectorising (corpus and intent alike).
PLACEHOLDERS: dict[str, str] = {
    "site": "zsitez", "environment": "zenvz", "platform": "zplatformz", "family": "zfamilyz",
    "package": "zpackagez", "day": "zdatez", "asset_id": "zassetz", "count": "znumz",
}

ENVIRONMENT_WORDS: dict[str, str] = {
    "prod": "prod", "production": "prod", "prd": "prod", "prods": "prod",
    "staging": "staging", "stg": "staging", "stage": "staging", "stag": "staging",
    "dev": "dev", "development": "dev", "devel": "dev",
}
PLATFORM_WORDS: dict[str, str] = {
    "aws": "aws", "amazon": "aws", "ec2": "aws",
    "azure": "azure", "az": "azure",
    "gcp": "gcp", "google": "gcp", "gce": "gcp",
    "vsphere": "vsphere", "vmware": "vsphere", "vcenter": "vsphere", "esxi": "vsphere",
}
# Operating-system words that start an image family name ("rhel 9", "win2022"): the family part.
OS_WORDS: dict[str, str] = {
    "ubuntu": "ubuntu", "rhel": "rhel", "redhat": "rhel", "debian": "debian", "windows": "windows", "win": "windows",
    "centos": "centos", "rocky": "rocky", "alma": "alma", "almalinux": "alma", "amzn": "amzn", "sles": "sles",
    "suse": "sles", "fedora": "fedora", "oracle": "oracle", "flatcar": "flatcar",
}
# Packages recognised in the bare "NAME VERSION" form even when no image of the day ships them.
WELL_KNOWN_PACKAGES: frozenset[str] = frozenset({
    "openssl", "log4j", "glibc", "openssh", "curl", "zlib", "xz", "sudo", "bash", "libssl", "nginx", "kernel",
    "linux-kernel", "libcurl", "polkit", "busybox", "python3", "java", "tomcat",
})
# Letter parts that with a number are not sites ("top 5", "tier1", "p95"): never reported as unknown sites.
NOT_SITE_WORDS: frozenset[str] = frozenset({
    "top", "last", "next", "first", "past", "day", "days", "week", "weeks", "hour", "hours", "month", "months",
    "tier", "step", "page", "run", "phase", "wave", "rev", "ver", "version", "gen", "ipv", "sha", "utf", "tls",
    "ssl", "md", "cve", "php", "java", "node", "python", "amd", "arm", "x", "v", "p", "vm", "vms", "the", "and",
    "for", "log", "win", "http", "https", "tcp", "udp", "port", "web", "db", "app", "api", "host",
    "server", "srv", "box", "rpo", "rto", "sev", "prio", "priority", "level", "zone", "rack", "room", "floor",
    *ENVIRONMENT_WORDS, *PLATFORM_WORDS, *OS_WORDS,
})
MAX_KNOWN_LISTED = 12  # an answer lists at most this many known names

_WORD = re.compile(r"[a-z0-9][a-z0-9._-]*[a-z0-9]|[a-z0-9]", re.I)
_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_RELATIVE = re.compile(r"\b(today|yesterday|(\d{1,3})\s+days?\s+ago)\b", re.I)
_ASSET = re.compile(
    r"\b(i-[0-9a-f]{8,17}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{15,20})\b", re.I)
_PKG_AT = re.compile(r"\b([a-z][a-z0-9+_.-]*[a-z0-9])@((?:[<>=!]=?|==)?\s*\d[\w.]*(?:\s*,\s*(?:[<>=!]=?|==)?\s*\d[\w.]*)*)",
                     re.I)
_PKG_OP = re.compile(r"\b([a-z][a-z0-9+_.-]*[a-z0-9])\s*(<=|>=|==|!=|<|>|=)\s*(\d+(?:\.\w+)*)", re.I)
_PKG_BARE = re.compile(r"\b([a-z][a-z0-9+_.-]*[a-z0-9])\s+v?(\d+(?:\.\d+)+|\d+)\b", re.I)
_FAMILY = re.compile(r"\b(red\s+hat|[a-z]+)[\s-]?(\d+(?:\.\d+)?)?\b", re.I)
_SITE_SHAPE = re.compile(r"^([a-z]{2,9})-?(\d{1,3})$")
_COUNT = re.compile(r"(?<![\w.@<>=-])(\d{1,6})(?![\w.%-])")


class VocabularyError(ValueError):
    """The warehouse has no day to read names from; the message names the table."""


@dataclass(frozen=True)
class Vocabulary:
    """The names the warehouse knows on one day: what a site, family or package word may resolve to."""

    sites: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()  # platforms with a scored partition that day (for fan-out)
    day: str | None = None

    def known_sites(self) -> str:
        return _listed(self.sites)

    def known_families(self) -> str:
        return _listed(self.families)


def _listed(names: Iterable[str]) -> str:
    names = list(names)
    shown = ", ".join(names[:MAX_KNOWN_LISTED])
    return shown + (f" and {len(names) - MAX_KNOWN_LISTED} more" if len(names) > MAX_KNOWN_LISTED else "") or "none"


_SITES_SQL = "SELECT DISTINCT site FROM t WHERE site IS NOT NULL ORDER BY site"
_FAMILIES_SQL = "SELECT DISTINCT family FROM registry WHERE family IS NOT NULL ORDER BY family"
_PACKAGES_SQL = "SELECT DISTINCT package FROM packages WHERE package IS NOT NULL ORDER BY package"


def vocabulary_from(warehouse: Warehouse, platforms: Iterable[str], day: date | str | None = None) -> Vocabulary:
    """The day's vocabulary: sites from the drift scores (the inventory when unscored), families from the
    golden-image registry in force, packages from the image SBOMs. Default day: the newest scored one.

    Fixed SQL over each partition, no values interpolated: the names come from the data, not the intent."""
    platforms = tuple(platforms)
    site_table = "drift_scores" if warehouse.dates("drift_scores") else "inventory"
    days = warehouse.dates(site_table)
    if day is None and not days:
        raise VocabularyError(f"{site_table}: no partition has been materialised, so no site is known")
    day_s = day.isoformat() if isinstance(day, date) else (day or days[-1])
    present = tuple(p for p in platforms if warehouse.exists(site_table, day_s, p))
    with sql.session() as con:
        sites: set[str] = set()
        for platform in present:
            sql.relation(con, "t", warehouse.source(site_table, day_s, platform))
            sites |= {row[0] for row in sql.rows(con, _SITES_SQL)}
        families: tuple[str, ...] = ()
        in_force = warehouse.latest_on_or_before("golden_images", day_s)
        if in_force is not None:
            sql.relation(con, "registry", warehouse.source("golden_images", in_force))
            families = tuple(row[0] for row in sql.rows(con, _FAMILIES_SQL))
        packages: tuple[str, ...] = ()
        sboms = warehouse.latest_on_or_before("image_packages", day_s)
        if sboms is not None:
            sql.relation(con, "packages", warehouse.source("image_packages", sboms))
            packages = tuple(row[0] for row in sql.rows(con, _PACKAGES_SQL))
    return Vocabulary(tuple(sorted(sites)), families, packages, present, day_s)


@dataclass(frozen=True)
class Params:
    """What the intent names. ``unknown_*``/``ambiguous_site`` mean: answer, and propose nothing."""

    site: str | None = None
    environment: str | None = None
    platform: str | None = None
    family: str | None = None
    package: str | None = None  # PACKAGE or PACKAGE@RANGE, as sbom_query reads it
    day: date | None = None
    asset_ids: tuple[str, ...] = ()
    count: int | None = None
    unknown_site: str | None = None
    unknown_family: str | None = None
    ambiguous_site: tuple[str, tuple[str, ...]] | None = None  # (as written, candidates)
    corrected: tuple[tuple[str, str], ...] = ()  # (as written, resolved) for accepted misspellings
    spans: tuple[tuple[int, int, str], ...] = field(default=(), repr=False, compare=False)

    @property
    def blocked(self) -> bool:
        """An entity could not be resolved safely: no task may be proposed from this intent."""
        return bool(self.unknown_site or self.unknown_family or self.ambiguous_site)

    def as_dict(self) -> dict:
        return {
            "site": self.site, "environment": self.environment, "platform": self.platform, "family": self.family,
            "package": self.package, "day": self.day.isoformat() if self.day else None,
            "asset_ids": list(self.asset_ids), "count": self.count, "unknown_site": self.unknown_site,
            "unknown_family": self.unknown_family,
            "ambiguous_site": list(self.ambiguous_site[1]) if self.ambiguous_site else None,
            "corrected": [list(c) for c in self.corrected],
        }


class _Found:
    """Spans already claimed by an entity, so one word is never read as two things."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int, str]] = []

    def free(self, start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in self.spans)

    def claim(self, start: int, end: int, kind: str) -> bool:
        if not self.free(start, end):
            return False
        self.spans.append((start, end, kind))
        return True


def recognise(intent: str, vocabulary: Vocabulary | None = None, today: date | None = None) -> Params:
    """Every entity the intent names. Deterministic: the same text and vocabulary give the same params.

    Without a vocabulary (routing alone) sites and families are recognised by shape only and none is
    reported unknown; with one, an unknown site- or family-shaped word blocks the proposal."""
    vocab = vocabulary or Vocabulary()
    text = intent.lower()
    found = _Found()
    values: dict = {}
    _assets(text, found, values)
    _dates(text, found, values, today)
    _packages(text, found, values, vocab)
    _families(text, found, values, vocab, vocabulary is not None)
    _words(text, found, values, vocab, vocabulary is not None)
    _count(text, found, values)
    return Params(**values, spans=tuple(sorted(found.spans)))


def _assets(text: str, found: _Found, values: dict) -> None:
    ids = []
    for m in _ASSET.finditer(text):
        if found.claim(m.start(), m.end(), "asset_id"):
            ids.append(m.group(1))
    if ids:
        values["asset_ids"] = tuple(dict.fromkeys(ids))


def _dates(text: str, found: _Found, values: dict, today: date | None) -> None:
    for m in _ISO_DATE.finditer(text):
        try:
            day = date.fromisoformat(m.group(1))
        except ValueError:
            continue  # "2026-13-45" is not a date; left for the words pass, which ignores it
        if found.claim(m.start(), m.end(), "day"):
            values.setdefault("day", day)
    for m in _RELATIVE.finditer(text):
        if not found.claim(m.start(), m.end(), "day"):
            continue
        if today is not None and "day" not in values:
            word = m.group(1).lower()
            back = 0 if word == "today" else 1 if word == "yesterday" else int(m.group(2))
            values["day"] = today - timedelta(days=back)


def _packages(text: str, found: _Found, values: dict, vocab: Vocabulary) -> None:
    known = set(vocab.packages) | WELL_KNOWN_PACKAGES
    for m in _PKG_AT.finditer(text):
        if found.claim(m.start(), m.end(), "package"):
            values.setdefault("package", m.group(1) + "@" + "".join(m.group(2).split()))
    for m in _PKG_OP.finditer(text):
        if m.group(1) in known and found.claim(m.start(), m.end(), "package"):
            op = "==" if m.group(2) == "=" else m.group(2)
            values.setdefault("package", f"{m.group(1)}@{op}{m.group(3)}")
    for m in _PKG_BARE.finditer(text):
        if m.group(1) in known and found.claim(m.start(), m.end(), "package"):
            values.setdefault("package", f"{m.group(1)}@{_release_range(m.group(2))}")
    for m in _WORD.finditer(text):
        if m.group(0) in known and found.claim(m.start(), m.end(), "package"):
            values.setdefault("package", m.group(0))


def _release_range(version: str) -> str:
    """"log4j 2.14" means any 2.14.x: a full x.y.z is exact, a shorter one covers its whole line."""
    parts = version.split(".")
    if len(parts) >= 3:
        return f"=={version}"
    upper = [*parts[:-1], str(int(parts[-1]) + 1)]
    return f">={version},<{'.'.join(upper)}"


def _family_key(name: str) -> tuple[str, str]:
    """("ubuntu", "22.04") for "ubuntu-22.04": the OS word and its version, comparable with what is typed."""
    m = re.match(r"([a-z]+)[\s-]?(\d+(?:\.\d+)*)?", name.lower())
    if not m:
        return name.lower(), ""
    return OS_WORDS.get(m.group(1), m.group(1)), m.group(2) or ""


def _families(text: str, found: _Found, values: dict, vocab: Vocabulary, strict: bool) -> None:
    keyed = [(f, *_family_key(f)) for f in vocab.families]
    for m in _FAMILY.finditer(text):
        word = re.sub(r"\s+", "", m.group(1).lower())
        os_name = OS_WORDS.get(word)
        if os_name is None or not found.free(m.start(), m.end()):
            continue
        version = m.group(2) or ""
        candidates = [f for f, name, ver in keyed if name == os_name and _version_fits(version, ver)]
        found.claim(m.start(), m.end(), "family")
        if len(candidates) == 1:
            values.setdefault("family", candidates[0])
        elif strict and not candidates:
            values.setdefault("unknown_family", f"{m.group(1)}{'-' + version if version else ''}".lower())
        elif not strict and vocab.families == ():
            values.setdefault("family", f"{os_name}-{version}" if version else os_name)


def _version_fits(typed: str, known: str) -> bool:
    """"22" fits "22.04", "22.04" fits "22.04", nothing typed fits any; "20" does not fit "22.04"."""
    if not typed:
        return True
    return known == typed or known.startswith(typed + ".")


def _words(text: str, found: _Found, values: dict, vocab: Vocabulary, strict: bool) -> None:
    sites = {s.lower(): s for s in vocab.sites}
    for m in _WORD.finditer(text):
        word = m.group(0).strip(".-_")
        start, end = m.start(), m.start() + len(word)
        if not found.free(start, end):
            continue
        if word in ENVIRONMENT_WORDS:
            found.claim(start, end, "environment")
            values.setdefault("environment", ENVIRONMENT_WORDS[word])
        elif word in PLATFORM_WORDS:
            found.claim(start, end, "platform")
            values.setdefault("platform", PLATFORM_WORDS[word])
        elif word in sites:
            found.claim(start, end, "site")
            values.setdefault("site", sites[word])
        elif (shape := _SITE_SHAPE.match(word)) and shape.group(1) not in NOT_SITE_WORDS:
            found.claim(start, end, "site")
            if strict:
                _resolve_site(word, shape, sites, values)


def _resolve_site(word: str, shape: re.Match, sites: dict[str, str], values: dict) -> None:
    """A site-shaped word not known as written: a unique close known site, else unknown or ambiguous."""
    letters, number = shape.group(1), str(int(shape.group(2)))
    close = []
    for key, site in sites.items():
        known = _SITE_SHAPE.match(key)
        if known is None or str(int(known.group(2))) != number:
            continue
        if letters == known.group(1) or _close(letters, known.group(1)):
            close.append(site)
    if len(close) == 1:
        values.setdefault("site", close[0])
        values.setdefault("corrected", ((word, close[0]),))
    elif len(close) > 1:
        values.setdefault("ambiguous_site", (word, tuple(sorted(close))))
    else:
        values.setdefault("unknown_site", word)


def _close(typed: str, known: str) -> bool:
    """One edit apart (Damerau), or the known letters start the typed ones ("sydny" for "syd")."""
    if typed.startswith(known) and len(typed) - len(known) <= 3 and len(known) >= 3:
        return True
    return _edits(typed, known) <= 1


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours)."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def _count(text: str, found: _Found, values: dict) -> None:
    for m in _COUNT.finditer(text):
        if found.claim(m.start(), m.end(), "count"):
            values.setdefault("count", int(m.group(1)))


def masked(intent: str, params: Params) -> str:
    """The intent with every recognised entity replaced by its placeholder token (what the matcher sees)."""
    text = intent.lower()
    for start, end, kind in sorted(params.spans, reverse=True):
        text = f"{text[:start]} {PLACEHOLDERS[kind]} {text[end:]}"
    return text
