"""debleed's REAPER bridge: selected items in, aligned ``[debleed]`` takes out.

The package is split by where code runs. Everything REAPER's embedded Python imports
(``rpr``, ``items``, ``settings``, ``jobs``, ``wavio``, ``actions``, ``export``,
``install``) is standard library only: C extensions such as numpy or torch are known to
crash REAPER when a script runs twice. The heavy work (``worker``, ``processing``) runs in
a subprocess of the user's debleed Python, or in the CLI process when REAPER is driven
from outside through reapy's distant API. The take logic in ``items`` is written against
an ``RPR``-like API object (``reapy.reascript_api``, the raw ``reaper_python`` module
through ``rpr.RawRPR``, or the tests' fake), so both paths share it.
"""
