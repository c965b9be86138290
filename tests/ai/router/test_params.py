"""Parameter recognition: each kind of entity, misspelt and unknown sites and families, masking."""

from __future__ import annotations

from datetime import date

import pytest

from qlrf.ai.router import Vocabulary, recognise, route, vocabulary_from
from qlrf.ai.router.params import masked
from tests.ai.router.support import small_warehouse

TODAY = date(2026, 11, 20)
VOCAB = Vocabulary(sites=("fra1", "lon1", "nyc1", "sfo1", "sin1", "syd1", "unassigned"),
                   families=("debian-12", "rhel-9", "ubuntu-22.04", "windows-2022"),
                   packages=("curl", "glibc", "openssh", "openssl", "zlib"))


def _p(text: str, vocabulary: Vocabulary | None = VOCAB):
    return recognise(text, vocabulary, today=TODAY)


@pytest.mark.parametrize(("text", "env"), [
    ("drift in PROD", "prod"), ("production vms", "prod"), ("prd boxes", "prod"), ("staging drift", "staging"),
    ("stg cost", "staging"), ("Dev machines", "dev"), ("development fleet", "dev"), ("what about it", None),
])
def test_environment_synonyms(text, env):
    assert _p(text).environment == env


@pytest.mark.parametrize(("text", "platform"), [
    ("aws cost", "aws"), ("Amazon vms", "aws"), ("ec2 instances", "aws"), ("azure drift", "azure"),
    ("az vms", "azure"), ("GCP", "gcp"), ("google cloud", "gcp"), ("vsphere", "vsphere"), ("VMware hosts", "vsphere"),
    ("vcenter vms", "vsphere"),
])
def test_platform_synonyms(text, platform):
    assert _p(text).platform == platform


@pytest.mark.parametrize(("text", "family"), [
    ("rebuild rhel 9", "rhel-9"), ("RHEL9 versions", "rhel-9"), ("red hat 9 image", "rhel-9"),
    ("ubuntu 22.04 channels", "ubuntu-22.04"), ("ubuntu-22 images", "ubuntu-22.04"), ("win2022 image", "windows-2022"),
    ("windows server images", "windows-2022"), ("debian12", "debian-12"),
])
def test_image_families_in_the_forms_operators_type(text, family):
    p = _p(text)
    assert p.family == family and not p.blocked


@pytest.mark.parametrize(("text", "package"), [
    ("vms with openssl@<3.0.14", "openssl@<3.0.14"),
    ("images with openssl < 3.0.14 in prod", "openssl@<3.0.14"),
    ("openssl>=3.0.2 anywhere", "openssl@>=3.0.2"),
    ("openssl@>=3.0,<3.0.8 exposure", "openssl@>=3.0,<3.0.8"),
    ("log4j 2.14 exposure", "log4j@>=2.14,<2.15"),
    ("curl 7.81.0 on rhel", "curl@==7.81.0"),
    ("which images ship zlib", "zlib"),
])
def test_package_and_version_range(text, package):
    assert _p(text).package == package


def test_dates_iso_and_relative_to_the_injected_today():
    assert _p("drift on 2026-11-18").day == date(2026, 11, 18)
    assert _p("drift yesterday").day == date(2026, 11, 19)
    assert _p("alerts today").day == TODAY
    assert _p("state 3 days ago").day == date(2026, 11, 17)
    assert recognise("drift yesterday", VOCAB, today=None).day is None  # no clock given: nothing made up
    assert _p("drift on 2026-13-45").day is None


def test_asset_ids_and_counts():
    p = _p("drift of i-9f40a42cd5f165451 and 8a08b1d7-186d-4064-96b1-9c2dae0e4476 and 6731251063321780760")
    assert p.asset_ids == ("i-9f40a42cd5f165451", "8a08b1d7-186d-4064-96b1-9c2dae0e4476", "6731251063321780760")
    assert p.count is None
    assert _p("top 5 sites in prod by drift").count == 5
    assert _p("openssl@<3.0.14 in syd1").count is None  # versions and site digits are not counts


def test_known_site_exact_and_case_insensitive():
    p = _p("Which PROD VMs in SYD1 run revoked images?")
    assert (p.site, p.environment, p.corrected, p.blocked) == ("syd1", "prod", (), False)
    assert _p("vms in unassigned").site == "unassigned"


@pytest.mark.parametrize(("written", "site"), [("syd01", "syd1"), ("sydny1", "syd1"), ("lno1", "lon1"), ("SIN-1", "sin1")])
def test_a_close_misspelling_of_a_known_site_is_corrected_when_unique(written, site):
    p = _p(f"drift at {written} prod")
    assert (p.site, p.corrected, p.blocked) == (site, ((written.lower(), site),), False)


def test_an_unknown_site_is_reported_not_guessed():
    p = _p("drift in fra2 prod")
    assert (p.site, p.unknown_site, p.blocked) == (None, "fra2", True)
    assert _p("patch ams1").unknown_site == "ams1"
    assert _p("top 5 tier1 apps on port 443").unknown_site is None  # number words are not sites


def test_an_ambiguous_misspelling_is_refused():
    vocab = Vocabulary(sites=("fra1", "fro1"))
    p = recognise("drift in frx1", vocab)
    assert (p.site, p.ambiguous_site, p.blocked) == (None, ("frx1", ("fra1", "fro1")), True)


def test_an_unknown_family_is_reported():
    p = _p("rebuild ubuntu 20.04 in lon1")
    assert (p.family, p.unknown_family, p.site, p.blocked) == (None, "ubuntu-20.04", "lon1", True)
    assert _p("centos 7 images").unknown_family == "centos-7"


def test_without_a_vocabulary_nothing_is_unknown():
    p = recognise("drift in fra2 on centos 7")
    assert (p.unknown_site, p.unknown_family, p.blocked) == (None, None, False)


def test_masking_makes_the_route_independent_of_the_site_named():
    a, b = recognise("which prod vms in syd1 run revoked images"), recognise("which dev vms in fra2 run revoked images")
    assert masked("which prod vms in syd1 run revoked images", a) == masked("which dev vms in fra2 run revoked images", b)
    assert (route("patch syd1 prod").agent, route("patch syd1 prod").task_type) == \
        (route("patch ams9 dev").agent, route("patch ams9 dev").task_type)


def test_vocabulary_read_from_the_warehouse_day(tmp_path):
    wh = small_warehouse(str(tmp_path / "wh"))
    vocab = vocabulary_from(wh, ("aws", "azure", "gcp", "vsphere"))
    assert vocab == Vocabulary(sites=("fra1", "lon1", "syd1"), families=("ubuntu-22",), packages=("openssl",),
                               platforms=("aws",), day="2026-11-20")
    assert recognise("ubuntu 22 in syd01", vocab).family == "ubuntu-22"
    assert "known sites: fra1, lon1, syd1" in f"known sites: {vocab.known_sites()}"
