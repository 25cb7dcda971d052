"""`make bench`: the foundation figures (intent accuracy, gateway latency), then the knowledge
base's, the frustration detector's and the return form's, each beside its baseline."""

from benchmarks import foundation, frustration, kb, returns

foundation.main([])
print()
kb.main([])
print()
frustration.main([])
print()
returns.main([])
