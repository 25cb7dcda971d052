"""Channels turn their own formats into IncomingMessage and the router's replies back."""
