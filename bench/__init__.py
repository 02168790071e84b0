"""``make bench``: the performance of CMS measured against its own raw hops in the same run
(docs/performance.md)."""
