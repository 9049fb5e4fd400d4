"""Selective hardening: protect a project's most sensitive weight words and prove it in C-sim.

Flow: ``select`` (walk a ranking at word granularity; stop at a budget of words or a damage
coverage, from the ranking's scores or an exhaustive campaign's truth) -> ``tmr`` (copy the
golden project; two replica arrays per protected array and a bit-wise 2-of-3 vote in the top
function, all from hls_templates/; the manifest's ``hardening`` section) -> ``report`` (coverage
against words protected, extra bits and the vote's estimated logic per layer). Above ``rank``.
"""
