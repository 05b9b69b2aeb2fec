"""Reading form bodies strictly: OAuth endpoints and the login form take nothing else.

RFC 6749 requests are `application/x-www-form-urlencoded`, each parameter at most once.
The body is read with a size cap (a token request is a few hundred bytes), must be
UTF-8, and a repeated parameter is an error rather than "the last one wins", because
two parsers that disagree on which one wins is how requests get smuggled. Errors never
quote the body back: it may hold a password or a secret.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
MAX_FIELDS = 32
_SAFE_NAME = re.compile(r"[a-z_]{1,40}")


class FormError(ValueError):
    """The body is not a form we can read; the message is safe to send back."""


async def read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise FormError(f"the body must be {FORM_TYPE}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormError(f"the body is larger than {MAX_FORM_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"the body is larger than {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict",
                          max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError) as error:
        raise FormError("the body is not a readable form (UTF-8, at most "
                        f"{MAX_FIELDS} parameters)") from error
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            shown = name if _SAFE_NAME.fullmatch(name) else "a parameter"
            raise FormError(f"{shown} is given more than once")
        if "\x00" in value:
            raise FormError("a parameter holds a NUL character")
        form[name] = value
    return form
