"""The README's receiver, run as written: it accepts a delivery signed with its secret (204)
and refuses one signed with another (400)."""

import re
import threading
from http.server import HTTPServer
from pathlib import Path
from typing import Any

from store_monitor.webhooks.events import event_body
from store_monitor.webhooks.sending import WebhookSender
from store_monitor.webhooks.signing import new_secret
from webhooks.test_delivery import opened

README = Path(__file__).resolve().parents[2] / "README.md"
_SERVE = 'HTTPServer(("127.0.0.1", 9000), Receiver).serve_forever()'


def _receiver_class(secret: str) -> Any:
    block = re.search(r"```python\n(from http\.server.*?)```", README.read_text(), re.DOTALL)
    assert block is not None, "the README has no receiver example"
    code = block[1].replace('"whsec_..."', repr(secret))
    assert _SERVE in code
    namespace: dict[str, Any] = {}
    exec(code.replace(_SERVE, ""), namespace)
    return namespace["Receiver"]


async def test_the_readme_receiver_verifies_a_delivery() -> None:
    secret = new_secret()
    server = HTTPServer(("127.0.0.1", 0), _receiver_class(secret))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        sender = WebhookSender(
            allow_private=True, connect_timeout_seconds=2, total_timeout_seconds=5
        )
        body = event_body(opened("s1"))
        accepted = await sender.deliver(url=url, secrets=[secret], event_id="evt_1", body=body)
        forged = await sender.deliver(url=url, secrets=[new_secret()], event_id="evt_2", body=body)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert accepted.status_code == 204
    assert forged.status_code == 400
