"""The `emostream` command: one entry point for every service, tool and benchmark."""
