"""`make bench`: the foundation figures (intent accuracy, gateway latency), then the knowledge
base's, the frustration detector's, the return form's, whole conversations', the handoff's and
the web channel's, each beside its baseline."""

from benchmarks import channels, conversations, foundation, frustration, handoff, kb, returns

foundation.main([])
print()
kb.main([])
print()
frustration.main([])
print()
returns.main([])
print()
conversations.main([])
print()
handoff.main([])
print()
channels.main([])
