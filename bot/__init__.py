"""The gateway: channels, identity, routing to Rasa, and the helpdesk behind it."""
