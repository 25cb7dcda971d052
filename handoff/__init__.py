"""The helpdesk: customers, conversations, transcripts, tickets and the unresolved log."""
