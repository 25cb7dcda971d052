"""What the tests stand on: the real stack started on free ports, stand-ins for what is
outside this machine (Telegram's Bot API, Rasa for the gateway's own tests), and clients that
act as a customer or an agent would."""
