"""`make bench`: the foundation figures (intent accuracy, gateway latency), then the knowledge
base's and the frustration detector's, each beside its baseline."""

from benchmarks import foundation, frustration, kb

foundation.main([])
print()
kb.main([])
print()
frustration.main([])
