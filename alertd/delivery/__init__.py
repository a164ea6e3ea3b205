"""Delivery: the outbox worker (retries, backoff, deadlines, rate limits and digests,
receiver health and fallback). It only delivers what group flushes committed to the outbox.
"""
