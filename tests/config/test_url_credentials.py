"""The URL-credential helper (qlrf.envparse): reject, strip, redact and scrub, never echoing a value."""

from __future__ import annotations

import pytest

from qlrf.envparse import (
    UrlCredentialsError,
    redact_url,
    reject_url_credentials,
    scrub_url,
    strip_url_credentials,
    url_credentials,
)


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("https://api.example/v1", []),
        ("vc01.example:443", []),
        ("[fd00::1]:8443", []),
        ("https://[fd00::1]:8443/sdk", []),
        ("https://user:s3cret@api.example/v1", ["user:password@"]),
        ("user:s3cret@vc01.example", ["user:password@"]),
        ("token@vc01.example", ["user@"]),
        ("https://user%40corp:p%40ss@[fd00::1]:8443/v1", ["user:password@"]),
        ("https://api.example/v1?api-key=abc", ["query parameter api-key"]),
        ("https://api.example/v1?key=abc&x=1", ["query parameter key"]),
        ("https://api.example/v1?TOKEN=abc", ["query parameter TOKEN"]),
        ("https://api.example/v1?api_key=abc&sig=def", ["query parameter api_key", "query parameter sig"]),
        ("https://api.example/v1?version=2&region=eu", []),
    ],
)
def test_credentials_are_found_in_userinfo_and_query(url, found):
    assert url_credentials(url) == found


def test_reject_names_the_variable_and_never_the_value():
    with pytest.raises(UrlCredentialsError) as err:
        reject_url_credentials("https://bob:hunter2@api.example/v1?api-key=k3y", "QLRF_LLM_BASE_URL", "QLRF_LLM_API_KEY")
    message = str(err.value)
    assert message.startswith("QLRF_LLM_BASE_URL: ") and "QLRF_LLM_API_KEY" in message
    assert "\n" not in message
    for secret in ("bob", "hunter2", "k3y", "api.example"):
        assert secret not in message
    assert isinstance(err.value, ValueError)  # callers that catch configuration errors still do


def test_reject_passes_a_clean_url_through():
    assert reject_url_credentials("http://[::1]:8000/v1", "X", "Y") == "http://[::1]:8000/v1"


@pytest.mark.parametrize(
    ("url", "stripped"),
    [
        ("https://u:p@api.example:8443/v1?api-key=k&model=m", "https://api.example:8443/v1?model=m"),
        ("https://u%3Ax:p%40ss@[fd00::1]/v1", "https://[fd00::1]/v1"),
        ("https://api.example/v1?token=t", "https://api.example/v1"),
    ],
)
def test_strip_drops_userinfo_and_secret_parameters_and_keeps_the_path(url, stripped):
    assert strip_url_credentials(url) == stripped


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "https://hooks.slack.com"),
        ("postgresql://qlrf:pa%40ss@db.example:5432/qlrf?sslmode=require", "postgresql://db.example:5432"),
        ("http://[fd00::1]:9000/hook?token=t", "http://[fd00::1]:9000"),
        ("https://user:pw@[bad", "https://[bad"),  # unparsable IPv6: still no userinfo, and no exception
        (None, ""),
    ],
)
def test_redact_keeps_scheme_and_host_only(url, shown):
    assert redact_url(url) == shown


def test_scrub_removes_the_url_and_its_secret_pieces_from_a_message():
    url = "https://hooks.example/services/T1/B2/s3cretpath?token=tok%2F1"
    message = (f"POST {url} failed; request line: POST /services/T1/B2/s3cretpath?token=tok%2F1 HTTP/1.1; "
               "path /services/T1/B2/s3cretpath")
    scrubbed = scrub_url(message, url)
    assert "s3cretpath" not in scrubbed and "tok%2F1" not in scrubbed
    assert "POST *** failed" in scrubbed


def test_scrub_removes_percent_encoded_userinfo_in_both_spellings():
    url = "postgresql://qlrf:pa%40ss@db.example/qlrf"
    scrubbed = scrub_url("auth failed for qlrf:pa@ss and qlrf:pa%40ss", url)
    assert "pa@ss" not in scrubbed and "pa%40ss" not in scrubbed


def test_endpoint_url_reads_blank_as_unset_and_refuses_credentials():
    from qlrf.envparse import endpoint_url

    assert endpoint_url({"E": "  "}, "E", "K") is None
    assert endpoint_url({"E": " http://[::1]:9/ "}, "E", "K") == "http://[::1]:9/"
    with pytest.raises(UrlCredentialsError, match="^E: .* set K instead$"):
        endpoint_url({"E": "http://u:p@h/"}, "E", "K")


@pytest.mark.parametrize(
    "quoted",
    [
        "key abc-Secret-123\nline-two here",  # as is
        "header b'Bearer abc-Secret-123\\nline-two'",  # bytes repr
        "folded: abc-Secret-123 line-two",  # whitespace folded onto one line
        '{"auth": "abc-Secret-123\\nline-two"}',  # JSON
        "url ?k=abc-Secret-123%0Aline-two",  # percent-encoded
    ],
)
def test_redact_secrets_catches_every_spelling(quoted):
    from qlrf.envparse import redact_secrets

    redacted = redact_secrets(quoted, ["abc-Secret-123\nline-two", None, "ab"])
    assert "abc-Secret-123" not in redacted and "line-two" not in redacted and "***" in redacted


def test_redact_secrets_leaves_short_values_and_other_text_alone():
    from qlrf.envparse import redact_secrets

    assert redact_secrets("HTTP 401 for ab", ["ab", ""]) == "HTTP 401 for ab"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("401: headers {'authorization': 'Bearer eyJhbGciOi.eyJpc3MiOiJx.c2ln'}", "'authorization': 'Bearer ***'"),
        ("token eyJ0eXAiOiJKV1Qi.eyJzdWIiOiIxMjM0 expired", "token *** expired"),
        ("X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE; Host=h", "X-Amz-Security-Token=***; Host=h"),
        ("body client_secret=abc123xyz&grant_type=client_credentials", "client_secret=***&grant_type"),
        ('{"password": "hunter2hunter2"}', '{"password": "***"}'),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic ***"),
    ],
)
def test_redact_credentials_masks_credential_shaped_values(text, kept):
    from qlrf.envparse import redact_credentials

    assert kept in redact_credentials(text)


def test_redact_credentials_leaves_ordinary_reasons_alone():
    from qlrf.envparse import redact_credentials

    reason = "403 Forbidden: Required 'compute.instances.list' permission for 'projects/p1' (bearer of the key)"
    assert redact_credentials(reason) == reason
