"""Webhook delivery of alerts: URL checks, connect-time address guard, the dispatcher.

Signing and verifying (shared with receivers) is the library's ``emostream.webhooks``, not here.
"""
