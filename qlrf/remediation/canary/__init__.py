"""Statistical canary analysis (issue 12 item 1): after a wave passes its health gate, compare the
machines the plan changed (canary) with the members not yet patched (baseline) on platform
metrics, judge as Kayenta does, and tell the executor: pass -> continue, fail -> roll back,
inconclusive -> pause for a human.

    config.py    the ``canary:`` section (plan spec or remediation policy), validated
    judge.py     the pure judgement (Mann-Whitney per metric, effect sizes, weights, data checks)
    metrics.py   the MetricSource protocol and the collection of a window's series
    sources/     CloudWatch, Azure Monitor, Cloud Monitoring, vSphere performance counters, HTTP probe
    analyst.py   the executor hook: config -> driver.members -> sources -> judge -> CanaryAnalysis

Nothing here is imported by ``import qlrf``; scipy is imported only when a judgement runs.
"""
