"""Connection-level and bad input: garbage, truncated and oversized frames,
bad lengths, requests before the handshake, malformed ConnectRequests,
unknown and internal opcodes, undecodable bodies, invalid paths, oversized
data, and the per-IP connection limit.

Every test checks that a bystander session connected before the bad input
keeps working afterwards, and, against ferrokeeper, that server.log names
the offending peer (127.0.0.1:<its port>) in a line written after the bad
input (DESIGN.md: "logged once with the peer address"). Apache ZooKeeper does
not name the peer for every case, so the log is not checked there.

What ZooKeeper 3.8 does, from NIOServerCnxn.readLength, ZooKeeperServer.
processPacket/processConnectRequest, PrepRequestProcessor and
FinalRequestProcessor, and confirmed by running this suite against it:
- a length < 0 or > jute.maxbuffer (1,048,575) closes the connection
  ("Len error"); so does a zero-length frame or one too short for a header;
- anything before a valid ConnectRequest that does not decode as one closes
  the connection with no answer;
- an unknown opcode is answered (xid, zxid -1, UNIMPLEMENTED) and the
  connection closed (UnimplementedRequestProcessor);
- an undecodable body of a known opcode is MARSHALLINGERROR and the
  connection stays open; trailing bytes after a complete record are ignored.
"""

import random
import socket
import struct
import time

import pytest

import zkwire as w
from conftest import IS_FK, Server

MAX_BUFFER = 0xFFFFF


@pytest.fixture(scope="module")
def victim():
    """A server of this module's own, so its log holds only this module's events."""
    srv = Server().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def bystander(victim):
    c = w.connected(victim.port)
    yield c
    c.close()


@pytest.fixture
def client(victim):
    """A raw connection without a handshake, closed at teardown."""
    made = []

    def make(handshake=False):
        c = w.connected(victim.port) if handshake else w.WireClient(victim.port)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _still_fine(victim, bystander, tag):
    """The bystander session works (write and read) and new sessions open."""
    assert victim.alive(), "server died"
    err, path = bystander.create(f"/bystander-{tag}-", b"ok", flags=w.EPHEMERAL_SEQUENTIAL)
    assert err == w.OK, err
    assert bystander.get_data(path)[1][0] == b"ok"
    fresh = w.connected(victim.port)
    try:
        assert fresh.exists(path)[0] == w.OK
    finally:
        fresh.close()


def _peer_logged(victim, peer_port, mark):
    if IS_FK:
        assert victim.wait_peer_logged(peer_port, mark), (
            f"no server.log line names 127.0.0.1:{peer_port} after the bad input:\n{victim.log_tail(20)}")


def _bad(victim, c):
    """(peer port, log mark) for a connection about to misbehave."""
    return c.sock.getsockname()[1], victim.log_mark()


# --- frames and lengths ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_before_handshake(victim, bystander, client, seed):
    """64 random bytes on a fresh connection: the server closes it."""
    c = client()
    port, mark = _bad(victim, c)
    rnd = random.Random(seed)
    c.send(bytes(rnd.getrandbits(8) for _ in range(64)))
    assert c.wait_closed(5.0)
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, f"random{seed}")


@pytest.mark.parametrize("seed", range(3))
def test_random_frame_after_handshake(victim, bystander, client, seed):
    """A well-framed request of random bytes: its random opcode is unknown, so the server
    answers UNIMPLEMENTED for its xid and closes."""
    c = client(handshake=True)
    port, mark = _bad(victim, c)
    rnd = random.Random(100 + seed)
    payload = bytes(rnd.getrandbits(8) for _ in range(40))
    c.send_frame(payload)
    rep = c.read_reply(timeout=5.0)
    assert rep.xid == struct.unpack(">i", payload[:4])[0]
    assert rep.err == w.UNIMPLEMENTED
    assert c.wait_closed(5.0)
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, f"rframe{seed}")


def test_split_connect_request_is_reassembled(victim, bystander, client):
    """A ConnectRequest frame that arrives in two pieces: after the first piece the
    server has answered nothing and kept the connection (checked after a round trip
    on another connection, which gives it the chance to read the piece), and once
    the rest arrives it opens the session."""
    c = client()
    data = w.frame(w.connect_request(timeout=5000))
    c.send(data[:10])
    _still_fine(victim, bystander, "split-connect")
    assert c.nothing_received()
    c.send(data[10:])
    raw = c.read_frame(timeout=5.0)
    version, timeout, session_id = struct.unpack(">iiq", raw[:16])
    assert (version, timeout) == (0, 5000) and session_id != 0
    assert c.exists("/")[0] == w.OK


def test_split_request_is_reassembled(victim, bystander, client):
    """A create frame that arrives in two pieces after the handshake is held until
    the rest comes, then executed and answered."""
    c = client(handshake=True)
    data = w.frame(w.Writer().int(1).int(w.OP_CREATE).bytes() + w.create_body("/split", b"whole"))
    c.send(data[: len(data) // 2])
    _still_fine(victim, bystander, "split-request")
    assert c.nothing_received()
    assert bystander.exists("/split")[0] == w.NONODE
    c.send(data[len(data) // 2 :])
    rep = c.wait_reply(1, timeout=5.0)
    assert rep.err == w.OK and rep.reader().string() == "/split"
    assert bystander.get_data("/split")[1][0] == b"whole"
    assert bystander.delete("/split") == w.OK


def test_truncated_frame_then_client_leaves(victim, bystander, client):
    """A frame announcing 100 bytes with only 10 sent, then the client goes away:
    harms nobody."""
    c = client()
    c.send(struct.pack(">i", 100) + b"x" * 10)
    _still_fine(victim, bystander, "trunc-frame-before")
    c.close()
    _still_fine(victim, bystander, "trunc-frame")


def test_truncated_frame_after_handshake(victim, bystander, client):
    """Half a request, then the client disconnects: the session simply loses its
    connection and the half request is never executed."""
    c = client(handshake=True)
    frame = w.frame(w.Writer().int(1).int(w.OP_CREATE).bytes() + w.create_body("/never"))
    c.send(frame[: len(frame) // 2])
    _still_fine(victim, bystander, "trunc-after-before")
    c.close()
    _still_fine(victim, bystander, "trunc-after")
    assert bystander.exists("/never")[0] == w.NONODE


@pytest.mark.parametrize("handshake", [False, True], ids=["before-handshake", "after-handshake"])
@pytest.mark.parametrize("length", [MAX_BUFFER + 1, 0x7FFFFFFF, -1, -7, 0], ids=["max+1", "int-max", "-1", "-7", "0"])
def test_bad_frame_length_closes(victim, bystander, client, length, handshake):
    """A frame length over jute.maxbuffer, negative, or zero closes the connection."""
    c = client(handshake=handshake)
    port, mark = _bad(victim, c)
    c.send(struct.pack(">i", length))
    assert c.wait_closed(5.0)
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, f"len{length}")


def test_frame_too_short_for_header(victim, bystander, client):
    """A 3-byte request frame (no room for the RequestHeader) closes the connection."""
    c = client(handshake=True)
    port, mark = _bad(victim, c)
    c.send_frame(b"\x00\x00\x00")
    assert c.wait_closed(5.0)
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, "short-header")


# --- handshake ----------------------------------------------------------------------------


def test_request_before_handshake(victim, bystander, client):
    """A getData request as the first frame does not decode as a ConnectRequest: closed, no answer."""
    c = client()
    port, mark = _bad(victim, c)
    c.send_frame(w.Writer().int(1).int(w.OP_GET_DATA).bytes() + w.path_watch_body("/"))
    with pytest.raises(w.ConnectionClosed):
        c.read_frame(timeout=5.0)
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, "before")


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00" * 10,
        struct.pack(">iqiq", 0, 0, 5000, 0) + struct.pack(">i", 1000) + b"\x00" * 16,
        struct.pack(">iqiq", 0, 0, 5000, 0) + struct.pack(">i", -2) + b"\x00" * 16,
    ],
    ids=["10-bytes", "passwd-len-past-end", "passwd-len-negative"],
)
def test_malformed_connect_request(victim, bystander, client, payload):
    """A ConnectRequest that does not decode closes the connection without an answer."""
    c = client()
    port, mark = _bad(victim, c)
    c.send_frame(payload)
    with pytest.raises(w.ConnectionClosed):
        c.read_frame(timeout=5.0)
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, "bad-connect")


@pytest.mark.parametrize(
    "payload",
    [
        struct.pack(">iqiq", 7, 0, 5000, 0) + struct.pack(">i", 16) + b"\x00" * 16,
        struct.pack(">iqiq", 0, 0, 5000, 0) + struct.pack(">i", 4) + b"\x00" * 4,
    ],
    ids=["protocol-version-7", "4-byte-passwd"],
)
def test_lenient_connect_request(victim, client, payload):
    """ZooKeeper ignores the protocol version and accepts a short password on a new
    session: both get a session (timeout 5000) and a working connection."""
    c = client()
    c.send_frame(payload)
    raw = c.read_frame(timeout=5.0)
    version, timeout, session_id = struct.unpack(">iiq", raw[:16])
    assert (version, timeout) == (0, 5000) and session_id != 0
    assert c.exists("/")[0] == w.OK


# --- opcodes -------------------------------------------------------------------------------


def test_unknown_opcode(victim, bystander, client):
    """An unknown opcode gets ReplyHeader(xid, -1, UNIMPLEMENTED) and the connection is
    closed (ZooKeeperServer.submitRequestNow -> UnimplementedRequestProcessor, whose reply
    carries request.zxid, still -1)."""
    c = client(handshake=True)
    port, mark = _bad(victim, c)
    xid = c.send_request(999, b"")
    rep = c.read_reply(timeout=5.0)
    assert (rep.xid, rep.err, rep.body) == (xid, w.UNIMPLEMENTED, b"")
    assert rep.zxid == -1
    assert c.wait_closed(5.0)
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, "unknown-op")


@pytest.mark.parametrize(
    "opcode, body, expected",
    [
        # deleteContainer: PrepRequestProcessor reads the raw body as the path, which
        # fails getParentPathAndValidate -> BADARGUMENTS
        (20, w.path_body("/x"), w.BADARGUMENTS),
        # createSession: a CreateSessionTxn cannot be read from an empty body -> MARSHALLINGERROR
        (-10, b"", w.MARSHALLINGERROR),
    ],
    ids=["deleteContainer", "createSession"],
)
def test_internal_opcodes_from_a_client(victim, bystander, client, opcode, body, expected):
    """Opcodes ZooKeeper uses internally are valid request types, so a client sending
    them gets an error answer and keeps its connection."""
    c = client(handshake=True)
    rep = c.request(opcode, body)
    assert rep.err == expected
    assert c.exists("/")[0] == w.OK
    _still_fine(victim, bystander, f"internal{opcode}")


@pytest.mark.parametrize(
    "opcode, body, xid",
    [
        (w.OP_CREATE, struct.pack(">i", 50) + b"/abc", None),
        (w.OP_GET_DATA, struct.pack(">i", 50) + b"/abc", None),
        (w.OP_SET_WATCHES, struct.pack(">qi", 0, 5), w.XID_SET_WATCHES),
        (w.OP_MULTI, struct.pack(">i?i", 1, False, -1) + b"\x00\x00", None),
        (w.OP_SET_ACL, w.path_body("/") + struct.pack(">i", 3), None),
    ],
    ids=["create", "getData", "setWatches", "multi", "setACL"],
)
def test_truncated_body_is_marshalling_error(victim, bystander, client, opcode, body, xid):
    """A known opcode whose body does not decode is MARSHALLINGERROR; the connection stays usable."""
    c = client(handshake=True)
    port, mark = _bad(victim, c)
    rep = c.request(opcode, body, xid=xid)
    assert rep.err == w.MARSHALLINGERROR
    if xid is not None:
        assert rep.xid == xid
    assert c.exists("/")[0] == w.OK
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, f"trunc-body{opcode}")


def test_trailing_bytes_after_record_are_ignored(victim, client):
    """Bytes after a complete request record are ignored (jute reads what the record needs)."""
    c = client(handshake=True)
    rep = c.request(w.OP_EXISTS, w.path_watch_body("/") + b"junk")
    assert rep.err == w.OK and len(rep.body) == 68


def test_multi_with_read_op_and_multi_read_with_write_op(victim, client):
    """A getData inside multi, or a create inside multiRead, is MARSHALLINGERROR.
    (ZooKeeper sends an empty MultiResponse body after the multiRead error header;
    clients ignore bodies of failed replies, so only the code is compared.)"""
    c = client(handshake=True)
    end = struct.pack(">i?i", -1, True, -1)
    rep = c.request(w.OP_MULTI, struct.pack(">i?i", w.OP_GET_DATA, False, -1) + w.path_watch_body("/") + end)
    assert rep.err == w.MARSHALLINGERROR
    rep = c.request(w.OP_MULTI_READ, struct.pack(">i?i", w.OP_CREATE, False, -1) + w.create_body("/mr") + end)
    assert rep.err == w.MARSHALLINGERROR
    assert c.exists("/mr")[0] == w.NONODE


@pytest.mark.parametrize("flags", [7, 99, -1])
def test_bad_create_flags(victim, client, flags):
    """A create mode that does not exist is BADARGUMENTS."""
    c = client(handshake=True)
    assert c.create("/badflags", flags=flags)[0] == w.BADARGUMENTS
    assert c.exists("/badflags")[0] == w.NONODE


# --- invalid paths ---------------------------------------------------------------------------

# ZooKeeper's answer per operation: creates validate the path (after looking up the
# parent, so "parent does not exist" wins: NONODE); setData and setACL validate first;
# delete validates only the '\0' / no-slash rule (getParentPathAndValidate); reads
# validate nothing and answer NONODE -- except exists, which refuses '\0', and "",
# which the DataTree maps to the root (nodes.put("", root)). sync and addWatch accept
# anything.
B, N, K = w.BADARGUMENTS, w.NONODE, w.OK
OPS = ["create", "createSeq", "delete", "exists", "getData", "setData", "getChildren", "getACL", "setACL",
       "sync", "addWatch"]
PATH_TABLE = {
    "": [B, B, B, K, K, B, K, K, B, K, K],
    "a": [B, B, B, N, N, B, N, N, B, K, K],
    "/p/": [B, K, N, N, N, B, N, N, B, K, K],
    "/p//b": [N, N, N, N, N, B, N, N, B, K, K],
    "/p/./b": [N, N, N, N, N, B, N, N, B, K, K],
    "/p/../b": [N, N, N, N, N, B, N, N, B, K, K],
    "/p/.": [B, K, N, N, N, B, N, N, B, K, K],
    "/p/..": [B, K, N, N, N, B, N, N, B, K, K],
    "/p/a\u0000b": [B, B, B, B, N, B, N, N, B, K, K],
    "//": [B, B, N, N, N, B, N, N, B, K, K],
    # kazoo never sends this one: its normpath turns it into "/p/b" before the
    # request is built, so only a raw client shows what the server answers
    "/p//b/": [N, N, N, N, N, B, N, N, B, K, K],
}


def _path_request(op, path):
    def p():
        return w.Writer().string(path)

    return {
        "create": lambda: (w.OP_CREATE, p().buffer(b"").acl(w.OPEN_ACL_UNSAFE).int(0).bytes()),
        "createSeq": lambda: (w.OP_CREATE, p().buffer(b"").acl(w.OPEN_ACL_UNSAFE).int(w.PERSISTENT_SEQUENTIAL).bytes()),
        "delete": lambda: (w.OP_DELETE, p().int(-1).bytes()),
        "exists": lambda: (w.OP_EXISTS, p().bool(False).bytes()),
        "getData": lambda: (w.OP_GET_DATA, p().bool(False).bytes()),
        "setData": lambda: (w.OP_SET_DATA, p().buffer(b"").int(-1).bytes()),
        "getChildren": lambda: (w.OP_GET_CHILDREN, p().bool(False).bytes()),
        "getACL": lambda: (w.OP_GET_ACL, p().bytes()),
        "setACL": lambda: (w.OP_SET_ACL, p().acl(w.OPEN_ACL_UNSAFE).int(-1).bytes()),
        "sync": lambda: (w.OP_SYNC, p().bytes()),
        "addWatch": lambda: (w.OP_ADD_WATCH, p().int(0).bytes()),
    }[op]()


@pytest.mark.parametrize("template", list(PATH_TABLE), ids=[repr(p) for p in PATH_TABLE])
def test_invalid_paths(victim, bystander, client, template):
    """Each operation answers an invalid path exactly as ZooKeeper does, and the
    connection stays open."""
    base = f"/paths-{abs(hash(template)) % 10**8}"
    if bystander.exists(base)[0] != w.OK:
        assert bystander.create(base)[0] == w.OK
    path = template.replace("/p", base, 1) if template.startswith("/p") else template
    c = client(handshake=True)
    port, mark = _bad(victim, c)
    got = {}
    for op in OPS:
        rep = c.request(*_path_request(op, path))
        got[op] = rep.err
        if rep.err == w.OK and op in ("create", "createSeq"):
            # sequential creates of "parent/" or "parent/." names are valid: clean up
            assert c.delete(rep.reader().string()) == w.OK
    assert c.exists("/")[0] == w.OK
    if any(v == w.BADARGUMENTS for v in got.values()):
        _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, "paths")
    mismatches = {op: (got[op], want) for op, want in zip(OPS, PATH_TABLE[template]) if got[op] != want}
    assert not mismatches, f"(got, ZooKeeper's) per op: {mismatches}"


# --- sizes and limits ------------------------------------------------------------------------


def _set_data_frame_len(path, data_len):
    # RequestHeader 8 + path (4 + n) + data (4 + m) + version 4
    return 8 + 4 + len(path.encode()) + 4 + data_len + 4


def test_data_just_under_max_buffer(victim, bystander, client):
    """A setData whose frame is exactly jute.maxbuffer bytes is accepted and the data
    reads back whole (the reply is larger than jute.maxbuffer; the server does not limit
    replies)."""
    c = client(handshake=True)
    path = "/big-under"
    assert c.create(path)[0] == w.OK
    data_len = MAX_BUFFER - _set_data_frame_len(path, 0)
    data = bytes(random.Random(1).getrandbits(8) for _ in range(1024)) * (data_len // 1024) + b"z" * (data_len % 1024)
    assert _set_data_frame_len(path, len(data)) == MAX_BUFFER
    err, stat = c.set_data(path, data)
    assert err == w.OK and stat.dataLength == len(data)
    err, (got, _) = c.get_data(path)
    assert got == data
    _still_fine(victim, bystander, "under")


def test_data_just_over_max_buffer(victim, bystander, client):
    """One byte more and the frame is over jute.maxbuffer: the connection is closed and
    nothing is written."""
    c = client(handshake=True)
    path = "/big-over"
    assert c.create(path)[0] == w.OK
    port, mark = _bad(victim, c)
    data = b"y" * (MAX_BUFFER + 1 - _set_data_frame_len(path, 0))
    try:
        c.send_frame(w.Writer().int(5).int(w.OP_SET_DATA).bytes() + w.set_data_body(path, data))
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed while we were still sending
    assert c.wait_closed(5.0)
    assert bystander.get_data(path)[1][1].dataLength == 0
    _peer_logged(victim, port, mark)
    _still_fine(victim, bystander, "over")


def test_create_with_large_data_under_limit(victim, client):
    """create accepts data up to the frame limit too."""
    c = client(handshake=True)
    path = "/big-create"
    overhead = 8 + 4 + len(path) + 4 + 4 + (4 + 4 + 4 + len("world") + 4 + len("anyone")) + 4
    data = b"c" * (MAX_BUFFER - overhead)
    assert c.create(path, data)[0] == w.OK
    assert c.exists(path)[1].dataLength == len(data)


def _connect_retry(port, timeout=5.0):
    """A connected WireClient, retrying while the server still counts closed connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return w.connected(port)
        except (w.ConnectionClosed, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _refused_connection(port):
    """Opens a connection and sends a ConnectRequest; returns (local port, True when
    the server closed it without a ConnectResponse). The local port is bound before
    connecting, so it is known even when the refusal resets the connect itself."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    local_port = sock.getsockname()[1]
    try:
        sock.settimeout(5.0)
        sock.connect(("127.0.0.1", port))
        sock.sendall(w.frame(w.connect_request()))
        return local_port, sock.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        return local_port, True
    except socket.timeout:
        return local_port, False
    finally:
        sock.close()


def test_max_client_cnxns_per_ip(make_server):
    """With maxClientCnxns=5, a sixth connection from the same IP is closed at once
    without a ConnectResponse (NIOServerCnxnFactory: "Too many connections from
    /127.0.0.1 - max is 5") and the refusal is logged; freeing one lets a new one in;
    the five keep working."""
    srv = make_server(maxClientCnxns=5)
    # the readiness probe's connections may still be counted for a moment
    first = [_connect_retry(srv.port) for _ in range(5)]
    try:
        mark = srv.log_mark()
        port, refused = _refused_connection(srv.port)
        assert refused, "the sixth connection got an answer"
        if IS_FK:
            assert srv.wait_peer_logged(port, mark), srv.log_tail(20)
        else:
            # ZooKeeper names the IP, not the port
            assert srv.wait_log(r"Too many connections from /127\.0\.0\.1 - max is 5", since=mark), srv.log_tail(20)
        for c in first:
            assert c.exists("/")[0] == w.OK
        first.pop().close()
        again = _connect_retry(srv.port)
        assert again.exists("/")[0] == w.OK
        again.close()
    finally:
        for c in first:
            c.close()


def test_four_letter_words_do_not_count_against_max_cnxns_forever(make_server):
    """Four-letter-word connections close after answering and free their slot."""
    srv = make_server(maxClientCnxns=2)
    for _ in range(6):
        assert w.four_letter_word(srv.port, "ruok") == "imok"
    a, b = _connect_retry(srv.port), _connect_retry(srv.port)
    a.close()
    b.close()
