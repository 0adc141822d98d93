"""The gateway's live side: open sockets and what is pushed to them.

From the bottom up: `send_queue` and `socket_metrics` (one socket's bounded sending),
the registries of open sockets (`visitor_sockets`, `operator_sockets`), the audience
rule (`audience`, `conversation_audience`: who may see a conversation), the keys that
open what is pushed (`conversation_keys`), and above them
what is pushed: `push` (events from Kafka), `presence`, `typing_signals`,
`availability`/`visitor_availability` and `widget_settings`. `visitor_socket` is the
widget's socket handler, at the top. Nothing here imports the HTTP routes."""
