"""Whether a package index can be reached, asked once and within seconds, before pip runs.

pip retries an index it cannot reach for minutes, printing a "Retrying" line each time, and
only then fails; a single request with a total deadline says the same in a few seconds. It goes
the way pip's own requests go: the proxies of the environment (`https_proxy`, `no_proxy`, the
system's settings that Python reads; `PIP_PROXY` wins, as it does for pip) and the certificates
pip trusts (the system's, `SSL_CERT_FILE`, and certifi's bundle when QGIS's Python has it). A
proxy or certificate bundle set only in pip's configuration is not seen. No QGIS here, so it is
tested with plain sockets and a loopback server.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import urllib.error
import urllib.request
from typing import NamedTuple

PROBE_TIMEOUT_S = 5.0


class IndexProbe(NamedTuple):
    """The answer: reachable only on HTTP 200; otherwise a short cause such as "HTTP 403"."""

    reachable: bool
    cause: str = ""


def probe_index(
    index_url: str, project: str = "torch", timeout_s: float = PROBE_TIMEOUT_S
) -> IndexProbe:
    """Request `<index_url>/<project>/` (the project's page of a PEP 503 simple index).

    Reachable only when it answers 200, whatever the failure otherwise (no name resolution,
    refused or dropped connection, TLS, a proxy's or the server's refusal), all within
    `timeout_s` in total: name resolution has no timeout of its own, so the request runs in a
    daemon thread that is left to its socket timeout when the deadline passes.
    """
    url = f"{index_url.rstrip('/')}/{project}/"
    answers: list[IndexProbe] = []
    worker = threading.Thread(target=lambda: answers.append(_request(url, timeout_s)), daemon=True)
    worker.start()
    worker.join(timeout_s)
    return answers[0] if answers else IndexProbe(False, _timed_out(timeout_s))


def _request(url: str, timeout_s: float) -> IndexProbe:
    handlers: list[urllib.request.BaseHandler] = [
        urllib.request.HTTPSHandler(context=_tls_context())
    ]
    pip_proxy = os.environ.get("PIP_PROXY", "")
    if pip_proxy:
        handlers.append(urllib.request.ProxyHandler({"http": pip_proxy, "https": pip_proxy}))
    opener = urllib.request.build_opener(*handlers)  # the environment's proxies otherwise
    try:
        with opener.open(url, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return IndexProbe(False, f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        reason = exc.reason
        return IndexProbe(
            False, _cause(reason, timeout_s) if isinstance(reason, OSError) else f"{reason}"
        )
    except (OSError, http.client.HTTPException) as exc:  # during the answer: reset, bad status
        return IndexProbe(False, _cause(exc, timeout_s))
    except ValueError as exc:  # not a URL urllib can open
        return IndexProbe(False, f"not a valid URL: {exc}")
    return IndexProbe(True) if status == 200 else IndexProbe(False, f"HTTP {status}")


def _tls_context() -> ssl.SSLContext:
    """The system's certificates (pip's since 24.2) and certifi's bundle (pip's before)."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(certifi.where())
    except (ImportError, OSError):  # no certifi, or an unreadable bundle: the system's decide
        pass
    return context


def _cause(exc: OSError | http.client.HTTPException, timeout_s: float) -> str:
    if isinstance(exc, socket.gaierror):
        return "name not resolved"
    if isinstance(exc, TimeoutError):
        return _timed_out(timeout_s)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failure: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _timed_out(timeout_s: float) -> str:
    return f"timed out after {timeout_s:g} s"
