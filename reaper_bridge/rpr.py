"""Access to REAPER's ReaScript API, inside REAPER or from outside through reapy.

The bridge calls ReaScript functions by their names without the ``RPR_`` prefix, with
the tuple return shapes of REAPER's Python binding (``reapy.reascript_api`` has exactly
that shape). Three sources provide such an object:

- ``reapy.reascript_api`` inside REAPER (re-exports ``reaper_python``) or outside
  (each call travels to REAPER's reapy server);
- ``RawRPR(reaper_python)``, the fallback when reapy is not importable inside REAPER;
- the tests' fake module, through ``RawRPR`` or through the real reapy.

Standard library only: REAPER's embedded Python imports this module.
"""

from __future__ import annotations

import re
import sys
import threading
from types import ModuleType
from typing import Any

from denoiser.errors import DebleedError

REAPY_SERVER_PORT = 2306
WEB_INTERFACE_PORT = 2307
#: A pointer as REAPER's Python binding spells it: ``"(MediaItem*)0x0000000012345678"``.
_POINTER = re.compile(r"\((\w+\*|HWND)\)0x([0-9A-Fa-f]{1,16})")


class ReaperConnectionError(DebleedError):
    """REAPER cannot be reached, or reapy is missing or not configured."""


def pack_pointer(kind: str, value: Any) -> int:
    """The address in a pointer string of type ``kind`` (any type when ``kind`` is
    ``void*``); 0 (NULL) for anything else. Unlike ``reaper_python.rpr_packp`` it does not
    ask ``ValidatePtr`` whether the object is in the project (see ``RawRPR``)."""
    match = _POINTER.fullmatch(str(value))
    if match is None or kind not in (match.group(1), "void*"):
        return 0
    return int(match.group(2), 16)


class RawRPR:
    """Expose a ``reaper_python``-like module's ``RPR_Name`` functions as ``Name``.

    REAPER's ``reaper_python`` passes every pointer argument through its module function
    ``rpr_packp``, which hands the function NULL unless ``ValidatePtr`` finds the object in
    the project. A source just made by ``PCM_Source_CreateFromFile`` is in no take yet, so
    ``SetMediaItemTake_Source(take, new_source)`` silently does nothing and returns false
    (a REAPER bug, reapy issue #38), and a source no take plays any more could never be
    destroyed. Nor does ``ValidatePtr`` know any audio accessor (``ValidatePtr2``'s
    documentation lists the types it supports), so an accessor render would read nothing
    and never destroy its accessor. So the wrapped module's ``rpr_packp`` is replaced by
    ``pack_pointer``, which skips that check, as reapy does when it is imported: the bridge
    behaves the same with and without reapy. The replacement lasts for REAPER's Python session, for every script
    (the same as after any script imported reapy); the bridge itself never passes a pointer
    to a deleted object (``project_items``).
    """

    def __init__(self, module: ModuleType | Any):
        self._module = module
        if hasattr(module, "rpr_packp"):
            module.rpr_packp = pack_pointer

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(self._module, "RPR_" + name)
        except AttributeError:
            raise AttributeError(f"ReaScript function RPR_{name} is not available") from None

    @property
    def raw_module(self) -> ModuleType | Any:
        """The wrapped module (the audio accessor needs its ctypes function table)."""
        return self._module


def defer(code: str) -> None:
    """Have REAPER run the Python ``code`` on a later cycle of its UI loop.

    ``RPR_defer`` is a built-in of REAPER's Python script host, set in the running
    script's ``__main__`` (where reapy's own ``defer`` finds it); it is not among
    ``reaper_python``'s generated API functions, nor reapy's. ``code`` runs in that
    namespace, so it must import what it needs.
    """
    sys.modules["__main__"].RPR_defer(code)


def at_exit(code: str) -> None:
    """Have REAPER run the Python ``code`` when the running script ends: when it finishes
    (no deferred code left) or when the user terminates it, which drops its deferred code
    (``RPR_atexit``: "Adds code to be executed when the script finishes or is ended by the
    user"). A built-in of the script host in ``__main__``, as ``RPR_defer`` is (reapy's
    ``at_exit`` calls it there); ``code`` runs in that namespace too."""
    sys.modules["__main__"].RPR_atexit(code)


def is_null(pointer: Any) -> bool:
    """True for REAPER's null pointers: ``None``, ``""`` or ``"(MediaItem*)0x0000000000000000"``."""
    if not pointer:
        return True
    text = str(pointer)
    if "0x" not in text:
        return False
    try:
        return int(text.rsplit("0x", 1)[1].rstrip(")"), 16) == 0
    except ValueError:
        return False


def reaper_api(prefer_reapy: bool = True) -> Any:
    """The API object inside REAPER: ``reapy.reascript_api``, else the raw module.

    reapy is optional inside REAPER; when it is missing or fails to import, the raw
    ``reaper_python`` functions have the same names and shapes, and ``RawRPR`` packs
    pointers as reapy does, so nothing else changes.
    """
    if prefer_reapy:
        try:
            import reapy  # noqa: F401  (imported for its side effect of wrapping RPR)
            import reapy.reascript_api as api

            if hasattr(api, "CountSelectedMediaItems"):
                return api
        except Exception:  # reapy broken or absent: the raw API does the same job
            pass
    import reaper_python

    return RawRPR(reaper_python)


def distant_api(timeout: float = 5.0) -> Any:
    """Connect to a running REAPER through reapy's distant API, or raise one clear line.

    ``import reapy`` outside REAPER tries to reach REAPER's web interface and can hang or
    only warn when REAPER is absent (reapy issues #130, #135), so it runs in a daemon
    thread with a timeout, and its warning is turned into an error.
    """
    outcome: dict[str, Any] = {}

    def connect() -> None:
        import warnings

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # reapy's DisabledDistAPIWarning: we raise instead
                import reapy

                if not reapy.dist_api_is_enabled():
                    reapy.reconnect()
                if reapy.dist_api_is_enabled():
                    import reapy.reascript_api as api

                    outcome["api"] = api
        except BaseException as exc:  # reported to the caller, who raises one line
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name="reapy-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    hint = (f"start REAPER, run reapy.configure_reaper() once from a terminal while REAPER "
            f"runs, then restart REAPER (reapy server on port {REAPY_SERVER_PORT}, web "
            f"interface on port {WEB_INTERFACE_PORT})")
    if thread.is_alive():
        raise ReaperConnectionError(f"REAPER did not answer within {timeout:g} s: {hint}")
    if "error" in outcome:
        exc = outcome["error"]
        if isinstance(exc, ModuleNotFoundError) and exc.name == "reapy":
            raise ReaperConnectionError(
                "python-reapy is not installed: pip install -e '.[reaper]' in the debleed "
                "checkout") from None
        raise ReaperConnectionError(f"cannot reach REAPER ({type(exc).__name__}: {exc}): {hint}") from None
    if "api" not in outcome or not hasattr(outcome["api"], "CountSelectedMediaItems"):
        raise ReaperConnectionError(f"REAPER's distant API is not enabled: {hint}")
    return outcome["api"]
