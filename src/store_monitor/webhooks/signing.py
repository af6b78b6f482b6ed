"""Signatures per the Standard Webhooks specification, made with its reference library.

Each attempt is signed anew at the time it is sent (`webhook-timestamp`), because receivers
refuse timestamps more than a few minutes old; `webhook-id` stays the event's own.
"""

import base64
import math
from collections.abc import Sequence
from datetime import datetime
from secrets import token_bytes
from typing import Final

from standardwebhooks import Webhook

SECRET_PREFIX: Final = "whsec_"
_SECRET_BYTES: Final = 32


def new_secret() -> str:
    """A subscription's signing secret, `whsec_` + base64 of 32 random bytes: shown to its owner
    once, and stored as is (it must sign every delivery)."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(_SECRET_BYTES)).decode()


def signed_headers(
    *, secrets: Sequence[str], event_id: str, body: bytes, at: datetime
) -> dict[str, str]:
    """The headers of one attempt to send `body`, signed as of `at` (aware) with each of
    `secrets`: a receiver accepts a body that any one of the signatures verifies with its
    secret (the specification's way to rotate one)."""
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        # The library signs the whole seconds of `at`; the header must say the same.
        "webhook-timestamp": str(math.floor(at.timestamp())),
        "webhook-signature": " ".join(
            Webhook(secret).sign(event_id, at, body) for secret in secrets
        ),
    }
