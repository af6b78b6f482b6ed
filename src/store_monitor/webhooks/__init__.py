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
- `outbox`: `record()` writes events in the caller's transaction, with one pending delivery
  per subscription that wants each (matched there: nothing to fan out later, nothing lost).
- `delivery`: a delivery as leased work (`store_monitor.work`): one attempt per job, retried
  after `retry_delay()` (the row's `due_at`), failed after the last.
- `failing`: a subscription's failing mark, set and cleared by its attempts; a day of failures
  disables it (`disable_if_failing()`).
- `retention`: delivered (or given up) deliveries and their events deleted after a while.
- `report_events`: `report.completed` / `report.failed`, recorded where a report finishes.

Wiring, from the settings (`store_monitor.runtime.delivery_policy`): `webhook_private_targets`
is `allow_private` (for both checks); the timeouts build the process's one `WebhookSender`;
`webhook_retry_base_seconds` and `webhook_max_attempts` go to the `DeliveryPolicy`.
"""
