"""Realtime: messages a run (or anything holding the signing key) publishes on a channel's topics,
delivered live to browsers and servers subscribed with a token (protocol-next.md §5).

What other apps call: `tokens.mint_run_stream_token(run_id)` and `publishing.publish_message(...)`,
`publishing.write_stream(...)`. Serving subscribers is the ASGI side (`realtime/asgi.py`).
This package imports no other app of the project: anything may call it.
"""
