"""Names of downloaded files in `Content-Disposition` (RFC 6266), safe whatever a store id holds:
a store id may hold any character but controls, e.g. `/`, quotes or letters beyond ASCII."""

import hashlib
import re
from typing import Final
from urllib.parse import quote

_PLAIN: Final = re.compile(r"[A-Za-z0-9._-]")
# Path separators and what Windows refuses in a name; controls never reach here (the store-id
# rule refuses them).
_UNSAFE: Final = re.compile(r'[/\\:*?"<>|]')
PART_MAX_BYTES: Final = 120
"""Of a name's part taken from data: the whole name stays well under file systems' 255 bytes."""


def name_part(text: str) -> str:
    """`text` as part of a file name: path separators and characters file systems refuse become
    `_`; a text over `PART_MAX_BYTES` of UTF-8 is cut, with a digest of the whole appended so
    that two long texts that start alike still name two files."""
    safe = _UNSAFE.sub("_", text)
    if len(safe.encode()) <= PART_MAX_BYTES:
        return safe
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    cut = safe.encode()[: PART_MAX_BYTES - len(digest) - 1].decode(errors="ignore")
    return f"{cut}~{digest}"


def attachment(filename: str) -> str:
    """A `Content-Disposition` value that saves the body as `filename`: in plain `filename` when
    it is all letters, digits, `.`, `_` and `-`; otherwise as UTF-8 in `filename*` (which curl -OJ
    and browsers use), after a plain `filename` with `_` in place of every other character for
    clients that read only that."""
    fallback = "".join(char if _PLAIN.fullmatch(char) else "_" for char in filename)
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
