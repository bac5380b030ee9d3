"""Research tools: baselines, agreement, robustness, seeds, ablation, refit probes, benchmarks. They may import the library and the jobs; nothing imports them."""
