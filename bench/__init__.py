"""The benchmark: how the inspector's cost grows with model size, against flax and Orbax.

``python -m bench`` (``make bench``) writes ``bench/RESULTS.md`` and ``bench/growth.html``;
``python -m bench --quick`` is the CI check. Modules: ``models`` and ``sizes`` (synthetic models),
``cases`` (the workloads), ``protocol`` and ``run_case`` (each case timed in a child process of its
own), ``suite`` (measures, goals, plans, CI gates), ``report`` (Markdown and the plotly chart),
``machine`` (facts about the run).
"""
