"""Rasa SDK actions for the after-sales assistant (run with `rasa run actions`)."""
