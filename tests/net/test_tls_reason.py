"""The one-line reason a failed TLS connection is reported with (neuroseg.net.dicomweb)."""

import ssl

from neuroseg.net.dicomweb import _tls_reason


def test_a_connection_closed_under_the_client_names_the_likely_missing_certificate():
    eof = ssl.SSLEOFError(8, "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1027)")
    assert _tls_reason(eof) == "connection closed by the server during TLS (client certificate required?)"
    assert _tls_reason(ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required")) \
        == "certificate required"
    assert _tls_reason(ssl.SSLError(1, "something else")) == "SSLError"
