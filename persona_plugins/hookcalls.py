"""Calling hooks: the one place that awaits whatever a hook implementation returns.

Every hook may be implemented ``async def``, or synchronously returning an awaitable, or
synchronously returning a plain value; the helpers here treat the three alike, by hook shape:

- :func:`decide` (``firstresult=True``): the first non-None result, awaited. An implementation
  whose awaitable resolves to None defers, exactly like one that returns None: the
  implementations after it are asked in turn.
- :func:`collect`: every implementation's result (lists flattened, None dropped), awaitables awaited
  concurrently.
- :func:`register_all`: a ``register(...)`` callback hook; an async implementation is run to
  completion (the pipeline is built from synchronous code). :func:`collect_named` collects the
  objects such a hook registers by their ``name`` (detectors, refiners).
- :func:`each_implementation`: one caller per implementation, so that a stage can run each one in
  isolation (one that raises costs only its own result).

Calls go through pluggy's own hook callers, so ``wrapper=True`` implementations and hook-call
monitoring (``PERSONA_PLUGINS_TRACE_HOOKS=1``) see every call.

:class:`Hooks` is how a pipeline's turns call hooks: the same two shapes (:meth:`Hooks.decide`,
:meth:`Hooks.collect`), but when nothing can tell the difference (no ``wrapper=True``
implementation, no hook-call monitoring) the implementations are called directly, in pluggy's
order, skipping pluggy's generic call machinery (a few microseconds a call on the hot path).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import operator
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NamedTuple, TypeVar

import pluggy

from persona_plugins.concurrency import run_together
from persona_plugins.errors import ConfigError

__all__ = [
    "Hooks",
    "Implementation",
    "collect",
    "collect_named",
    "decide",
    "each_implementation",
    "flatten",
    "plugin_label",
    "register_all",
    "settle",
    "settle_all",
]

T = TypeVar("T")
_HookImpl = Any  # pluggy.HookImpl (not exported under that name by every pluggy 1.x)

_PLUGGY_CALL_LOOP: object = None
try:  # pluggy's own call loop: a manager still using it has no hook-call monitoring installed
    from pluggy._callers import _multicall

    _PLUGGY_CALL_LOOP = _multicall
except ImportError:  # pragma: no cover - another pluggy layout: always call through pluggy
    pass


async def settle(value: T | Awaitable[T]) -> T:
    """``value``, awaited when it is awaitable."""
    if inspect.isawaitable(value):
        return await value
    return value


async def settle_all(items: Sequence[Any]) -> list[Any]:
    """Every item, the awaitable ones awaited concurrently, in order.

    A single awaitable is awaited directly (:func:`run_together` makes no task for it, which
    matters on the hot path).
    """
    pending = [i for i, item in enumerate(items) if inspect.isawaitable(item)]
    if not pending:
        return list(items)
    out = list(items)
    settled = await run_together(items[i] for i in pending)
    for index, value in zip(pending, settled, strict=True):
        out[index] = value
    return out


def flatten(results: Iterable[Any]) -> list[Any]:
    """The results of a collect hook as one list: lists and tuples spread, None dropped."""
    flat: list[Any] = []
    for item in results:
        if item is None:
            continue
        if isinstance(item, (list, tuple)):
            for x in item:
                if x is not None:
                    flat.append(x)
        else:
            flat.append(item)
    return flat


def plugin_label(pm: pluggy.PluginManager, plugin: object) -> str:
    """A readable name for a plugin: its registered name, or its class (or module) name when it
    was registered without one (pluggy then names it after its ``id()``)."""
    name = pm.get_name(plugin)
    if name and name != str(id(plugin)):
        return name
    if inspect.ismodule(plugin):
        return plugin.__name__
    return type(plugin).__name__


def _in_call_order(caller: pluggy.HookCaller) -> list[_HookImpl]:
    # pluggy calls implementations from the end of the list to the start; wrappers wrap the rest.
    return [
        impl for impl in reversed(caller.get_hookimpls()) if not (impl.wrapper or impl.hookwrapper)
    ]


def _code_of(function: Callable[..., Any]) -> object:
    return getattr(getattr(function, "__func__", function), "__code__", None)


async def decide(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> Any:
    """Call the decide hook ``name`` and return its first non-None result, awaited.

    pluggy stops at the first non-None *return value*, which for an ``async def`` implementation
    is its coroutine, even when the coroutine then resolves to None. So when an awaited result is
    None, the implementation that produced it is found (by its code) and the implementations after
    it are asked, as pluggy would have asked them had the implementation been synchronous.
    """
    caller: pluggy.HookCaller = getattr(pm.hook, name)
    removed: set[object] = set()
    while True:
        result = caller(**kwargs)
        if not inspect.isawaitable(result):
            return result
        code = getattr(result, "cr_code", None)
        value = await result
        if value is not None or code is None:
            return value
        order = _in_call_order(caller)
        deferred = next(
            (i for i, impl in enumerate(order) if _code_of(impl.function) is code), None
        )
        if deferred is None or deferred == len(order) - 1:
            return None
        try:
            removed.update(impl.plugin for impl in order[: deferred + 1])
            caller = pm.subset_hook_caller(name, removed)
        except TypeError:  # an unhashable plugin object: no subset caller can leave it out
            return None


async def collect(pm: pluggy.PluginManager, name: str, **kwargs: Any) -> list[Any]:
    """Call the collect hook ``name``: every result, lists flattened, None dropped, awaited."""
    produced = flatten(getattr(pm.hook, name)(**kwargs))
    return [item for item in await settle_all(produced) if item is not None]


def run_to_completion(awaitable: Awaitable[T]) -> T:
    """Run an awaitable from synchronous code: on a new event loop, or, when this thread already
    runs one (a pipeline built inside async code), on a new loop in a helper thread."""

    async def main() -> T:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def register_all(pm: pluggy.PluginManager, name: str, register: Callable[..., None]) -> None:
    """Call the register hook ``name`` with ``register``; async implementations are run to
    completion before this returns."""
    for result in getattr(pm.hook, name)(register=register):
        if inspect.isawaitable(result):
            run_to_completion(result)


def collect_named(pm: pluggy.PluginManager, name: str, method: str) -> dict[str, Any]:
    """Every object registered through the register hook ``name``, by its ``name`` (a name
    registered twice keeps the later registration).

    :raises ConfigError: for an object without a ``name`` or a callable ``method``.
    """
    found: dict[str, Any] = {}

    def register(obj: Any) -> None:
        key = getattr(obj, "name", None)
        if not isinstance(key, str) or not callable(getattr(obj, method, None)):
            raise ConfigError(
                f"{name}: register() takes an object with a 'name' and a "
                f"'{method}' method, got {type(obj).__name__}"
            )
        found[key] = obj

    register_all(pm, name, register)
    return found


class Implementation(NamedTuple):
    """One implementation of a hook, callable on its own."""

    name: str  #: the plugin's registered name (unique on its manager)
    label: str  #: a readable name for messages (see :func:`plugin_label`)
    call: Callable[..., Any]  #: calls this implementation only and returns its result


def each_implementation(pm: pluggy.PluginManager, name: str) -> list[Implementation]:
    """Each implementation of hook ``name``, in call order, callable on its own.

    ``call(**kwargs)`` calls that one implementation (through any ``wrapper=True``
    implementations) and returns what it returned, or raises what it raised.
    """
    order = _in_call_order(getattr(pm.hook, name))
    return [
        Implementation(
            impl.plugin_name,
            plugin_label(pm, impl.plugin),
            _one_caller(pm, name, impl, [other.plugin for other in order if other is not impl]),
        )
        for impl in order
    ]


def _one_caller(
    pm: pluggy.PluginManager, name: str, impl: _HookImpl, others: list[object]
) -> Callable[..., Any]:
    try:
        caller = pm.subset_hook_caller(name, others)
    except TypeError:  # an unhashable plugin object: call the implementation itself

        def direct(**kwargs: Any) -> Any:
            return impl.function(*(kwargs[arg] for arg in impl.argnames))

        return direct

    def through_pluggy(**kwargs: Any) -> Any:
        results = caller(**kwargs)  # a collect call of one implementation: [result] or []
        return results[0] if results else None

    return through_pluggy


def unmonitored(pm: pluggy.PluginManager) -> bool:
    """True when nothing watches ``pm``'s hook calls: no hook-call monitoring
    (``add_hookcall_monitoring``, ``enable_tracing``, ``PERSONA_PLUGINS_TRACE_HOOKS``) and no
    subclass hook executor. Anything this cannot confirm counts as watched."""
    return (
        _PLUGGY_CALL_LOOP is not None
        and getattr(pm, "_inner_hookexec", None) is _PLUGGY_CALL_LOOP
        and getattr(type(pm), "_hookexec", None) is pluggy.PluginManager._hookexec
    )


#: (pluggy's own lists, copies of them as handed out)
_HeldLists = tuple[tuple[list[_HookImpl], ...], tuple[list[_HookImpl], ...]]


class _Direct(NamedTuple):
    function: Callable[..., Any]
    pick: Callable[[dict[str, Any]], Sequence[Any]]  #: the call's keywords -> its arguments


def _picker(argnames: Sequence[str]) -> Callable[[dict[str, Any]], Sequence[Any]]:
    if not argnames:
        return lambda kwargs: ()
    get = operator.itemgetter(*argnames)
    if len(argnames) == 1:
        return lambda kwargs: (get(kwargs),)
    return get


def _arguments(impl: _Direct, kwargs: dict[str, Any]) -> Sequence[Any]:
    try:
        return impl.pick(kwargs)
    except KeyError as exc:  # as pluggy reports it
        raise pluggy.HookCallError(f"hook call must provide argument {exc.args[0]!r}") from None


class Hooks:
    """The hooks of one plugin manager, as a pipeline's turns call them.

    :meth:`decide` and :meth:`collect` behave as the module functions of the same names. When a
    hook has no ``wrapper=True`` implementation and the manager no hook-call monitoring, its
    implementations are called directly, in pluggy's order (pluggy's call machinery would add
    nothing anyone can see); otherwise the call goes through pluggy. Which of the two applies is
    worked out once per hook and again only when the hook's implementations change (a plugin
    registered or unregistered, even mid-way through a pipeline's life).
    """

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self._resolved: dict[str, tuple[list[_HookImpl], tuple[_Direct, ...] | None]] = {}
        self._lives: dict[str, list[_HookImpl]] = {}  # pluggy's own lists (see _live)
        self._derived: dict[str, tuple[list[_HookImpl], list[_HookImpl], Any]] = {}
        self._lists: dict[tuple[str, ...], _HeldLists] = {}
        # pluggy's own executor (a subclass's may watch calls: never bypass it), in a known layout
        self._plain = (
            _PLUGGY_CALL_LOOP is not None
            and getattr(type(pm), "_hookexec", None) is pluggy.PluginManager._hookexec
        )

    def _live(self, name: str) -> list[_HookImpl] | None:
        """pluggy's own list of hook ``name``'s implementations, which registering and
        unregistering change in place (pluggy keeps one list per hook for good): read, never
        copied, so compare it with a copy kept from before. None in another pluggy layout."""
        live = self._lives.get(name)
        if live is None:
            impls = getattr(getattr(self.pm.hook, name), "_hookimpls", None)
            if not isinstance(impls, list):
                return None
            live = self._lives[name] = impls
        return live

    def _listed(self, name: str) -> list[_HookImpl]:
        """Hook ``name``'s implementations as pluggy lists them: its own list (see :meth:`_live`)
        or, in another pluggy layout, its public copy."""
        live = self._live(name)
        return live if live is not None else getattr(self.pm.hook, name).get_hookimpls()

    def derived(self, name: str, make: Callable[[], T]) -> T:
        """What ``make()`` returns, for work that depends on which implementations hook
        ``name`` has and on nothing else: made once, and again only when those implementations
        change (a plugin registered or unregistered, even mid-way through a pipeline's life).
        One value per hook name."""
        held = self._derived.get(name)
        if held is not None and held[0] == held[1]:  # pluggy's list as it was when made
            value: T = held[2]
            return value
        value = make()
        live = self._live(name)
        if live is not None:  # another pluggy layout: made on every call
            self._derived[name] = (live, list(live), value)
        return value

    def implementations(self, name: str) -> tuple[_Direct, ...] | None:
        """The implementations of hook ``name`` in call order, each ``(function, pick)``;
        None when the hook must be called through pluggy (a wrapper, or monitoring)."""
        if not self._plain or getattr(self.pm, "_inner_hookexec", None) is not _PLUGGY_CALL_LOOP:
            return None  # hook-call monitoring (or an unknown pluggy): every call through pluggy
        impls = self._lives.get(name)
        if impls is None:
            impls = self._listed(name)
        known = self._resolved.get(name)
        if known is not None and known[0] == impls:
            return known[1]
        direct = None
        if not any(impl.wrapper or impl.hookwrapper for impl in impls):
            direct = tuple(
                _Direct(impl.function, _picker(impl.argnames)) for impl in reversed(impls)
            )
        self._resolved[name] = (list(impls), direct)
        return direct

    def implementation_lists(self, names: tuple[str, ...]) -> tuple[list[_HookImpl], ...] | None:
        """A copy of each hook's implementations (as pluggy lists them), to key work that
        depends on which implementations the hooks ``names`` have and on nothing else about them
        (the same tuple, until one of them changes); None while calls must go through pluggy
        (hook-call monitoring, or an unknown pluggy)."""
        if not self._plain or getattr(self.pm, "_inner_hookexec", None) is not _PLUGGY_CALL_LOOP:
            return None
        held = self._lists.get(names)
        if held is not None and held[0] == held[1]:  # pluggy's lists as they were when copied
            return held[1]
        copies = tuple([list(self._listed(name)) for name in names])
        lives = tuple([live for live in map(self._live, names) if live is not None])
        if len(lives) == len(names):  # another pluggy layout: copied on every call
            self._lists[names] = (lives, copies)
        return copies

    def is_only(self, name: str, function: Callable[..., Any]) -> bool:
        """True when ``function`` is the one implementation of hook ``name`` and is called
        directly (so what it returns for given arguments is all the hook can give)."""
        direct = self.implementations(name)
        return direct is not None and len(direct) == 1 and direct[0].function is function

    async def decide(self, name: str, **kwargs: Any) -> Any:
        """The first non-None result of the decide hook ``name``, awaited (see :func:`decide`):
        an implementation whose awaitable resolves to None defers to the next."""
        direct = self.implementations(name)
        if direct is None:
            return await decide(self.pm, name, **kwargs)
        for impl in direct:
            result = impl.function(*_arguments(impl, kwargs))
            if result is not None and inspect.isawaitable(result):
                result = await result
            if result is not None:
                return result
        return None

    async def collect(self, name: str, **kwargs: Any) -> list[Any]:
        """Every result of the collect hook ``name``, lists flattened, None dropped, awaited
        (see :func:`collect`)."""
        direct = self.implementations(name)
        if direct is None:
            return await collect(self.pm, name, **kwargs)
        if not direct:
            return []
        results = flatten([impl.function(*_arguments(impl, kwargs)) for impl in direct])
        if len(results) == 1:  # the usual case: one result, awaited in place
            only = results[0]
            if inspect.isawaitable(only):
                only = await only
            return [] if only is None else [only]
        return [item for item in await settle_all(results) if item is not None]
