"""The front stage's facts about a module, on Python's ``ast``: its scopes and bindings
(``scopes``), the expressions that mean torch names (``references``), which expressions are modules,
layers and factories (``inference``), the other files of its project (``project``), and the keys
that name its nodes for the LibCST side (``keys``)."""
