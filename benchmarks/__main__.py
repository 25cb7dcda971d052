"""`make bench`: the foundation figures (intent accuracy, gateway latency), then the knowledge base's."""

from benchmarks import foundation, kb

foundation.main([])
print()
kb.main([])
