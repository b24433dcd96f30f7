"""The moto request recording, read back: each request's headers, user agent app name, SigV4
service and body (JSON, query protocol or raw)."""

from __future__ import annotations

import base64
import json
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Iterator


def read_recording(path: Path) -> Iterator[dict]:
    """The entries of a moto recording. moto appends one JSON object and then a newline in two
    writes, and several servers (and threads) append to the same file, so two objects can share a
    line: decode the stream object by object instead of line by line."""
    text = path.read_text(encoding="utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in " \t\r\n":
            pos += 1
        if pos >= end:
            return
        try:
            entry, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            # A torn write (a server killed mid-append): skip to the next line, say so.
            nl = text.find("\n", pos)
            print(f"iam_check: warning: unreadable recording entry at offset {pos}: {e.msg}", file=sys.stderr)
            pos = end if nl < 0 else nl + 1
            continue
        if isinstance(entry, dict):
            yield entry


def header(entry: dict, name: str) -> str | None:
    name = name.lower()
    for key, value in (entry.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


_APP = re.compile(r"(?:^|\s)app/([A-Za-z0-9!#$%&'*+.^_`|~-]+)")


def app_name(entry: dict) -> str | None:
    """The SDK app name (`app/<name>` in the user agent headers), if the caller set one."""
    for name in ("x-amz-user-agent", "user-agent"):
        m = _APP.search(header(entry, name) or "")
        if m:
            return m.group(1)
    return None


def credential_scope_service(entry: dict) -> str | None:
    auth = header(entry, "authorization") or ""
    m = re.search(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    if m:
        return m.group(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry.get("url") or "").query)
    cred = (query.get("X-Amz-Credential") or [""])[0].split("/")
    return cred[3] if len(cred) == 5 else None


def body_bytes(entry: dict) -> bytes:
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8") if isinstance(body, str) else b""


def json_body(entry: dict) -> dict:
    raw = body_bytes(entry)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise ValueError(f"body is not JSON ({e})") from e
    if not isinstance(value, dict):
        raise ValueError("body is not a JSON object")
    return value


def query_protocol_body(entry: dict) -> dict[str, str]:
    """Parameters of an AWS query-protocol request (form body), flattened."""
    params = urllib.parse.parse_qs(body_bytes(entry).decode("utf-8", "replace"))
    params.update(urllib.parse.parse_qs(urllib.parse.urlsplit(entry.get("url") or "").query))
    return {k: v[0] for k, v in params.items()}
