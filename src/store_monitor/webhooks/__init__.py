"""Webhooks: the events store-monitor sends, and one signed, safe delivery attempt of each.

The modules, each one job, for the code that stores subscriptions and runs deliveries:

- `events`: the four event bodies as pydantic models (`WebhookEvent` is their union, for OpenAPI
  `webhooks`); `event_body()` gives the bytes to store in the outbox and send, `event_id()` the
  `webhook-id` for an event's row id.
- `signing`: `new_secret()` for a subscription (`whsec_...`, stored as is: it signs), and
  `signed_headers()`: Standard Webhooks headers for one attempt.
- `targets`: `check_target_url()` when a subscription is created (raises `UnsafeTargetError`,
  a `ValueError` for a 422), and `resolve_target()` at delivery, which pins the checked address.
- `sending`: `WebhookSender.deliver()`: one attempt (resolve, check, sign, POST), its outcome as
  a `DeliveryResult`; it never raises for anything the receiver or the network does.
- `backoff`: `retry_delay()`: how long to wait after a failed attempt, or None to give up.

Wiring, from the settings: `webhook_private_targets` is `allow_private` (for both checks);
`webhook_connect_timeout_seconds` and `webhook_timeout_seconds` build the process's one
`WebhookSender`; `webhook_retry_base_seconds` and `webhook_max_attempts` go to `retry_delay()`.
A delivery job loads the event's stored body, calls `deliver()` with the subscription's URL and
secret and `event_id(row id)`, records the `DeliveryResult` as a delivery attempt, and on failure
schedules the next attempt after `retry_delay()` (or marks the delivery failed on None).
"""
