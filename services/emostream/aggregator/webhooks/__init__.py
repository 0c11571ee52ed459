"""Webhook delivery of alerts: URL checks, connect-time address guard, the dispatcher."""
