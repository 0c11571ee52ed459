"""What every service process needs: signal handling, the HTTP server, health endpoints."""
