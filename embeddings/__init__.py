"""Sentence embeddings and classification on them, shared by the NLU pipeline (bot/nlu) and
the knowledge-base retrieval in the action server (actions/), which must not import bot."""
