"""The one leased-work layer: claim, renew, fence, give back, fail, give up, sweep, queue.

Work is a row of a table (`table.WorkTable`): a report, a shard of one, and later a live
evaluation or a webhook delivery. Its state lives in Postgres; a queue only carries
(kind, key, attempt) to a runner (`queue`, `arq`). An attempt claims its row under a lease
its runner renews (`lease`), every write it makes is fenced by its number, and the sweep
(`sweep`) queues the next attempt of work whose attempt died, or gives the work up.
"""
