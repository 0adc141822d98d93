"""`make chaos`: Parley under a supervisor that restarts what crashes (as compose's
`restart: unless-stopped` does), scripted visitors and operators chatting through the
gateway, and every service, the Kafka broker and PostgreSQL killed in turn; then the
figures that must all be 0 (docs/chaos.md).

system.py starts it, clients.py chats, kills.py kills, checks.py and rebuild.py
measure, report.py writes; run.py ties them together and `python -m chaos` runs it."""
