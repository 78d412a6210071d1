"""Which port a checkout's managed Prefect server gets when none is named (bourse/runtime.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bourse import runtime

EPHEMERAL_LOW = 32768  # Linux's default ip_local_port_range starts here


@pytest.fixture(autouse=True)
def _unnamed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runtime.PORT_ENV, raising=False)
    monkeypatch.delenv(runtime.DEFAULT_PORT_ENV, raising=False)


def _listen(port: int) -> socket.socket | None:
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None  # something else holds it already: it is taken either way
    sock.listen()
    return sock


@pytest.fixture
def held() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


def _own(state: Path, monkeypatch: pytest.MonkeyPatch, held: list[socket.socket]) -> int:
    """The checkout's derived port: what is chosen once the default port is taken."""
    default = _listen(0)
    assert default is not None
    held.append(default)
    monkeypatch.setenv(runtime.DEFAULT_PORT_ENV, str(default.getsockname()[1]))
    return runtime.managed_port(state)


def test_the_derived_port_is_stable_and_below_the_ephemeral_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: list[socket.socket]
) -> None:
    """A port the OS hands out (a connection's, a free-port probe's) is never the derived one."""
    ports = {_own(tmp_path / f"p{i}" / "state", monkeypatch, held) for i in range(20)}
    assert len(ports) > 1  # from the path: projects differ
    for port in ports:
        assert runtime.OWN_PORT_BASE <= port < runtime.OWN_PORT_BASE + runtime.OWN_PORT_SPAN
        assert port < EPHEMERAL_LOW
    state = tmp_path / "p0" / "state"
    assert _own(state, monkeypatch, held) == _own(state, monkeypatch, held)


def test_no_port_something_listens_on_is_chosen_unnamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, held: list[socket.socket]
) -> None:
    """Default and derived ports taken: a free port, neither of them."""
    state = tmp_path / "state"
    own = _own(state, monkeypatch, held)
    if (sock := _listen(own)) is not None:
        held.append(sock)
    chosen = runtime.managed_port(state)
    taken = {s.getsockname()[1] for s in held} | {own}
    assert chosen not in taken
    probe = _listen(chosen)
    assert probe is not None, f"port {chosen} was chosen but cannot be listened on"
    probe.close()


def test_a_named_port_is_used_as_named_and_a_bad_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(runtime.PORT_ENV, "4321")
    assert runtime.managed_port(tmp_path) == 4321
    monkeypatch.setenv(runtime.PORT_ENV, "http")
    with pytest.raises(SystemExit, match="is not a port number"):
        runtime.managed_port(tmp_path)
