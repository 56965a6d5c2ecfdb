"""A small raw ZooKeeper client-protocol client, for what kazoo cannot say.

kazoo 2.11 has no API for createContainer, createTTL, multiRead, addWatch,
removeWatches, checkWatches, getEphemerals, getAllChildrenNumber, whoAmI,
setWatches/setWatches2, and it never lets a test send a malformed frame. This
module speaks the wire protocol directly (facts from
/work/shared/ZOOKEEPER-NOTES.md):

    frame        = int32 length (big-endian) + payload
    handshake    = ConnectRequest / ConnectResponse, no RequestHeader
    request      = RequestHeader{int xid, int type} + body
    reply        = ReplyHeader{int xid, long zxid, int err} + body (only if err == 0)
    notification = reply with xid -1, body WatcherEvent{int type, int state, ustring path}

Everything is synchronous and every read has a deadline, so a test that
waits for something that never comes fails instead of hanging.
"""

import collections
import select
import socket
import struct
import time
from dataclasses import dataclass, field

# --- constants (ZooDefs.OpCode, KeeperException.Code, ZooDefs.Perms) -------

OP_NOTIFICATION = 0
OP_CREATE = 1
OP_DELETE = 2
OP_EXISTS = 3
OP_GET_DATA = 4
OP_SET_DATA = 5
OP_GET_ACL = 6
OP_SET_ACL = 7
OP_GET_CHILDREN = 8
OP_SYNC = 9
OP_PING = 11
OP_GET_CHILDREN2 = 12
OP_CHECK = 13
OP_MULTI = 14
OP_CREATE2 = 15
OP_RECONFIG = 16
OP_CHECK_WATCHES = 17
OP_REMOVE_WATCHES = 18
OP_CREATE_CONTAINER = 19
OP_CREATE_TTL = 21
OP_MULTI_READ = 22
OP_AUTH = 100
OP_SASL = 102
OP_SET_WATCHES = 101
OP_GET_EPHEMERALS = 103
OP_GET_ALL_CHILDREN_NUMBER = 104
OP_SET_WATCHES2 = 105
OP_ADD_WATCH = 106
OP_WHO_AM_I = 107
OP_CLOSE_SESSION = -11
OP_ERROR = -1

XID_NOTIFICATION = -1
XID_PING = -2
XID_AUTH = -4
XID_SET_WATCHES = -8

OK = 0
SYSTEMERROR = -1
RUNTIMEINCONSISTENCY = -2
MARSHALLINGERROR = -5
UNIMPLEMENTED = -6
BADARGUMENTS = -8
NONODE = -101
NOAUTH = -102
BADVERSION = -103
NOCHILDRENFOREPHEMERALS = -108
NODEEXISTS = -110
NOTEMPTY = -111
SESSIONEXPIRED = -112
INVALIDACL = -114
AUTHFAILED = -115
NOWATCHER = -121
RECONFIGDISABLED = -123

PERSISTENT = 0
EPHEMERAL = 1
PERSISTENT_SEQUENTIAL = 2
EPHEMERAL_SEQUENTIAL = 3
CONTAINER = 4
PERSISTENT_WITH_TTL = 5
PERSISTENT_SEQUENTIAL_WITH_TTL = 6

EVENT_NONE = -1
EVENT_NODE_CREATED = 1
EVENT_NODE_DELETED = 2
EVENT_NODE_DATA_CHANGED = 3
EVENT_NODE_CHILDREN_CHANGED = 4
EVENT_DATA_WATCH_REMOVED = 5
EVENT_CHILD_WATCH_REMOVED = 6
STATE_SYNC_CONNECTED = 3

ADD_WATCH_PERSISTENT = 0
ADD_WATCH_PERSISTENT_RECURSIVE = 1
WATCHER_CHILDREN = 1
WATCHER_DATA = 2
WATCHER_ANY = 3
WATCHER_PERSISTENT = 4
WATCHER_PERSISTENT_RECURSIVE = 5

PERM_READ = 1
PERM_WRITE = 2
PERM_CREATE = 4
PERM_DELETE = 8
PERM_ADMIN = 16
PERM_ALL = 31

CONTAINER_EPHEMERAL_OWNER = -0x8000000000000000  # 0x8000000000000000 as a signed long
OPEN_ACL_UNSAFE = [(PERM_ALL, "world", "anyone")]
NULL_ACL = "null-acl"  # pass as acl= to send a null vector (-1 count)


# --- jute encoding ---------------------------------------------------------


class Writer:
    """Builds a jute record: big-endian ints and longs, length-prefixed strings."""

    def __init__(self):
        self.parts = []

    def int(self, v):
        self.parts.append(struct.pack(">i", v))
        return self

    def long(self, v):
        self.parts.append(struct.pack(">q", v))
        return self

    def bool(self, v):
        self.parts.append(b"\x01" if v else b"\x00")
        return self

    def buffer(self, b):
        if b is None:
            return self.int(-1)
        self.int(len(b))
        self.parts.append(bytes(b))
        return self

    def string(self, s):
        return self.buffer(None if s is None else s.encode("utf-8"))

    def strings(self, items):
        if items is None:
            return self.int(-1)
        self.int(len(items))
        for s in items:
            self.string(s)
        return self

    def acl(self, acls):
        if acls is None or acls is NULL_ACL:
            return self.int(-1)
        self.int(len(acls))
        for perms, scheme, ident in acls:
            self.int(perms).string(scheme).string(ident)
        return self

    def raw(self, b):
        self.parts.append(bytes(b))
        return self

    def bytes(self):
        return b"".join(self.parts)


class Reader:
    """Reads a jute record; raises ValueError when the bytes run out."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def _take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"record too short: need {n} at {self.pos} of {len(self.data)}")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def long(self):
        return struct.unpack(">q", self._take(8))[0]

    def bool(self):
        return self._take(1) != b"\x00"

    def buffer(self):
        n = self.int()
        return None if n == -1 else self._take(n)

    def string(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8", errors="surrogateescape")

    def strings(self):
        n = self.int()
        return None if n == -1 else [self.string() for _ in range(n)]

    def acl(self):
        n = self.int()
        return None if n == -1 else [(self.int(), self.string(), self.string()) for _ in range(n)]

    def stat(self):
        return Stat(
            czxid=self.long(),
            mzxid=self.long(),
            ctime=self.long(),
            mtime=self.long(),
            version=self.int(),
            cversion=self.int(),
            aversion=self.int(),
            ephemeralOwner=self.long(),
            dataLength=self.int(),
            numChildren=self.int(),
            pzxid=self.long(),
        )

    def remaining(self):
        return len(self.data) - self.pos


@dataclass
class Stat:
    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int
    dataLength: int
    numChildren: int
    pzxid: int


@dataclass
class Reply:
    xid: int
    zxid: int
    err: int
    body: bytes
    # Notifications that arrived on this connection after the request was
    # sent and before its reply, in arrival order.
    events_before: list = field(default_factory=list)

    def reader(self):
        return Reader(self.body)


@dataclass
class Event:
    type: int
    state: int
    path: str
    zxid: int


@dataclass
class ConnectResponse:
    protocol_version: int
    timeout: int
    session_id: int
    passwd: bytes
    read_only: object  # bool, or None when the server sent the 36-byte form
    raw: bytes


class ConnectionClosed(Exception):
    """The server closed the connection (EOF or reset)."""


# --- request bodies ----------------------------------------------------------


def path_body(path):
    return Writer().string(path).bytes()


def path_watch_body(path, watch=False):
    return Writer().string(path).bool(watch).bytes()


def create_body(path, data=b"", acl=None, flags=PERSISTENT, ttl=None):
    w = Writer().string(path).buffer(data).acl(OPEN_ACL_UNSAFE if acl is None else acl).int(flags)
    if ttl is not None:
        w.long(ttl)
    return w.bytes()


def delete_body(path, version=-1):
    return Writer().string(path).int(version).bytes()


def set_data_body(path, data, version=-1):
    return Writer().string(path).buffer(data).int(version).bytes()


def set_acl_body(path, acl, version=-1):
    return Writer().string(path).acl(acl).int(version).bytes()


def check_body(path, version):
    return Writer().string(path).int(version).bytes()


def path_type_body(path, kind):
    """CheckWatchesRequest, RemoveWatchesRequest and AddWatchRequest: path + int."""
    return Writer().string(path).int(kind).bytes()


def multi_body(ops):
    """ops: list of (opcode, body bytes). Closed by MultiHeader(-1, true, -1)."""
    w = Writer()
    for opcode, body in ops:
        w.int(opcode).bool(False).int(-1).raw(body)
    w.int(-1).bool(True).int(-1)
    return w.bytes()


def set_watches_body(relative_zxid, data=(), exist=(), child=(), persistent=None, recursive=None):
    w = Writer().long(relative_zxid).strings(list(data)).strings(list(exist)).strings(list(child))
    if persistent is not None or recursive is not None:
        w.strings(list(persistent or ())).strings(list(recursive or ()))
    return w.bytes()


def reconfig_body(joining="", leaving="", new_members="", config_id=-1):
    return Writer().string(joining).string(leaving).string(new_members).long(config_id).bytes()


def auth_body(scheme, auth):
    return Writer().int(0).string(scheme).buffer(auth).bytes()


def connect_request(last_zxid=0, timeout=10000, session_id=0, passwd=b"\x00" * 16, read_only=False):
    w = Writer().int(0).long(last_zxid).int(timeout).long(session_id).buffer(passwd)
    if read_only is not None:
        w.bool(read_only)
    return w.bytes()


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


# --- multi results -----------------------------------------------------------


def parse_multi(body):
    """Returns [(type, err, detail)] from a MultiResponse body.

    detail is the path for create, (path, Stat) for create2-like results, a
    Stat for setData, (data, Stat) for getData, children for getChildren and
    None otherwise. An ErrorResult has type -1 and err = its code.
    """
    r = Reader(body)
    results = []
    while True:
        kind, done, err = r.int(), r.bool(), r.int()
        if done:
            assert (kind, err) == (-1, -1), f"multi end marker is ({kind}, {err})"
            break
        if kind == OP_ERROR:
            results.append((kind, r.int(), None))
        elif kind == OP_CREATE:
            results.append((kind, err, r.string()))
        elif kind in (OP_CREATE2, OP_CREATE_CONTAINER, OP_CREATE_TTL):
            results.append((kind, err, (r.string(), r.stat())))
        elif kind == OP_SET_DATA:
            results.append((kind, err, r.stat()))
        elif kind == OP_GET_DATA:
            results.append((kind, err, (r.buffer(), r.stat())))
        elif kind == OP_GET_CHILDREN:
            results.append((kind, err, r.strings()))
        elif kind in (OP_DELETE, OP_CHECK):
            results.append((kind, err, None))
        else:
            raise ValueError(f"unknown multi result type {kind}")
    assert r.remaining() == 0, "bytes after the multi end marker"
    return results


# --- the client --------------------------------------------------------------


class WireClient:
    """One TCP connection speaking the client protocol, with deadlines."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.xid = 0
        self.events = []  # every notification seen, in order
        self.unread = collections.deque()  # notifications not yet taken by wait_event
        self.session = None
        self.last_zxid = 0

    # raw I/O

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, payload):
        self.send(frame(payload))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waited for {n} bytes, have {len(self.buf)}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError(f"waited for {n} bytes, have {len(self.buf)}") from None
            except (ConnectionResetError, BrokenPipeError) as e:
                raise ConnectionClosed(str(e)) from None
            if not chunk:
                raise ConnectionClosed(f"EOF with {len(self.buf)} bytes buffered")
            self.buf += chunk

    def read_frame(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(4, deadline)
        (n,) = struct.unpack(">i", self.buf[:4])
        self._fill(4 + n, deadline)
        payload = self.buf[4 : 4 + n]
        self.buf = self.buf[4 + n :]
        return payload

    def wait_closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (any
        unread frames are discarded)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(len(self.buf) + 1, deadline)
        except ConnectionClosed:
            return True
        except TimeoutError:
            return False

    def nothing_received(self):
        """True when the server has sent nothing on this connection so far and
        has not closed it; looks at what has already arrived, without waiting."""
        if self.buf:
            return False
        readable, _, _ = select.select([self.sock], [], [], 0)
        if not readable:
            return True
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return False
        self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # handshake

    def connect(self, session_id=0, passwd=b"\x00" * 16, timeout_ms=10000, last_zxid=0, read_only=False):
        self.send_frame(connect_request(last_zxid, timeout_ms, session_id, passwd, read_only))
        raw = self.read_frame()
        r = Reader(raw)
        resp = ConnectResponse(r.int(), r.int(), r.long(), r.buffer(), None, raw)
        if r.remaining():
            resp.read_only = r.bool()
        assert r.remaining() == 0, f"{r.remaining()} bytes after ConnectResponse"
        self.session = resp
        self.last_zxid = last_zxid
        return resp

    # requests

    def next_xid(self):
        self.xid += 1
        return self.xid

    def send_request(self, opcode, body=b"", xid=None):
        xid = self.next_xid() if xid is None else xid
        self.send_frame(Writer().int(xid).int(opcode).bytes() + body)
        return xid

    def read_reply(self, timeout=None):
        """Next frame as a Reply (notifications included, xid -1)."""
        payload = self.read_frame(timeout)
        r = Reader(payload)
        xid, zxid, err = r.int(), r.long(), r.int()
        return Reply(xid, zxid, err, payload[16:])

    def wait_reply(self, xid, timeout=None):
        """Reads until the reply to xid; notifications on the way are kept."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        before = []
        while True:
            reply = self.read_reply(max(0.0, deadline - time.monotonic()))
            if reply.xid == XID_NOTIFICATION:
                ev = self._event(reply)
                before.append(ev)
                continue
            assert reply.xid == xid, f"reply xid {reply.xid} while waiting for {xid} (out of order)"
            if reply.zxid > 0:
                self.last_zxid = max(self.last_zxid, reply.zxid)
            reply.events_before = before
            return reply

    def _event(self, reply):
        r = reply.reader()
        ev = Event(r.int(), r.int(), r.string(), reply.zxid)
        self.events.append(ev)
        self.unread.append(ev)
        return ev

    def request(self, opcode, body=b"", xid=None, timeout=None):
        xid = self.send_request(opcode, body, xid)
        return self.wait_reply(xid, timeout)

    def wait_event(self, timeout=5.0):
        """Next notification not yet taken (including those that arrived
        while waiting for a reply); raises TimeoutError when none comes."""
        deadline = time.monotonic() + timeout
        while True:
            if self.unread:
                return self.unread.popleft()
            reply = self.read_reply(max(0.0, deadline - time.monotonic()))
            if reply.xid == XID_NOTIFICATION:
                self._event(reply)
                continue
            if reply.xid == XID_PING:
                continue
            raise AssertionError(f"unexpected reply xid {reply.xid} while waiting for an event")

    def barrier(self):
        """A sync round trip on this connection; returns the notifications
        taken on the way (pending ones first).

        The server sends a txn's events to every watching connection before
        it answers any later request on those connections (ZooKeeper's
        FinalRequestProcessor fires watches and answers requests in one
        order; ferrokeeper's DESIGN.md promises the same). So once a write
        has been acknowledged, every event it will ever cause on this
        connection has arrived by the time this sync is answered: an event
        that is merely late cannot pass for no event."""
        events = list(self.unread)
        self.unread.clear()
        rep = self.request(OP_SYNC, path_body("/"))
        assert rep.err == OK, f"sync answered {rep.err}"
        events += rep.events_before
        self.unread.clear()
        return events

    def no_event(self):
        """True when no notification is pending or arrives before a barrier
        (see barrier)."""
        return not self.barrier()

    # conveniences that return (err, decoded body or None)

    def create(self, path, data=b"", acl=None, flags=PERSISTENT, opcode=OP_CREATE, ttl=None):
        rep = self.request(opcode, create_body(path, data, acl, flags, ttl))
        if rep.err:
            return rep.err, None
        r = rep.reader()
        if opcode == OP_CREATE:
            return OK, r.string()
        return OK, (r.string(), r.stat())

    def delete(self, path, version=-1):
        return self.request(OP_DELETE, delete_body(path, version)).err

    def exists(self, path, watch=False):
        rep = self.request(OP_EXISTS, path_watch_body(path, watch))
        return rep.err, (rep.reader().stat() if rep.err == OK else None)

    def get_data(self, path, watch=False):
        rep = self.request(OP_GET_DATA, path_watch_body(path, watch))
        if rep.err:
            return rep.err, None
        r = rep.reader()
        return OK, (r.buffer(), r.stat())

    def set_data(self, path, data, version=-1):
        rep = self.request(OP_SET_DATA, set_data_body(path, data, version))
        return rep.err, (rep.reader().stat() if rep.err == OK else None)

    def get_children(self, path, watch=False):
        rep = self.request(OP_GET_CHILDREN, path_watch_body(path, watch))
        return rep.err, (rep.reader().strings() if rep.err == OK else None)

    def get_children2(self, path, watch=False):
        rep = self.request(OP_GET_CHILDREN2, path_watch_body(path, watch))
        if rep.err:
            return rep.err, None
        r = rep.reader()
        return OK, (r.strings(), r.stat())

    def get_acl(self, path):
        rep = self.request(OP_GET_ACL, path_body(path))
        if rep.err:
            return rep.err, None
        r = rep.reader()
        return OK, (r.acl(), r.stat())

    def set_acl(self, path, acl, version=-1):
        rep = self.request(OP_SET_ACL, set_acl_body(path, acl, version))
        return rep.err, (rep.reader().stat() if rep.err == OK else None)

    def add_watch(self, path, mode):
        return self.request(OP_ADD_WATCH, path_type_body(path, mode)).err

    def check_watches(self, path, kind):
        return self.request(OP_CHECK_WATCHES, path_type_body(path, kind)).err

    def remove_watches(self, path, kind):
        return self.request(OP_REMOVE_WATCHES, path_type_body(path, kind)).err

    def get_ephemerals(self, prefix):
        rep = self.request(OP_GET_EPHEMERALS, path_body(prefix))
        return rep.err, (rep.reader().strings() if rep.err == OK else None)

    def get_all_children_number(self, path):
        rep = self.request(OP_GET_ALL_CHILDREN_NUMBER, path_body(path))
        return rep.err, (rep.reader().int() if rep.err == OK else None)

    def who_am_i(self):
        rep = self.request(OP_WHO_AM_I)
        if rep.err:
            return rep.err, None
        r = rep.reader()
        n = r.int()
        return OK, [(r.string(), r.string()) for _ in range(max(n, 0))]

    def auth(self, scheme, credential):
        """Sends an AuthPacket (xid -4) and returns the reply's error code."""
        return self.request(OP_AUTH, auth_body(scheme, credential), xid=XID_AUTH).err

    def multi(self, ops, opcode=OP_MULTI):
        rep = self.request(opcode, multi_body(ops))
        return rep.err, (parse_multi(rep.body) if rep.err == OK else None), rep

    def ping(self):
        return self.request(OP_PING, xid=XID_PING)

    def close_session(self):
        return self.request(OP_CLOSE_SESSION)


def connected(port, timeout_ms=10000, **kw):
    """A WireClient that has completed the handshake with a new session."""
    c = WireClient(port)
    resp = c.connect(timeout_ms=timeout_ms, **kw)
    assert resp.session_id != 0 and resp.timeout > 0, f"session refused: {resp}"
    return c


def four_letter_word(port, word, timeout=5.0, host="127.0.0.1"):
    """Sends a four-letter word on a fresh connection; returns the whole
    answer (the server closes the connection after answering)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(word.encode() if isinstance(word, str) else word)
        deadline = time.monotonic() + timeout
        out = b""
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out.decode("utf-8", errors="replace")


def mode(port, host="127.0.0.1", timeout=1.0):
    """srvr's "Mode:" (standalone, leader, follower, observer...), or None
    while the server does not serve (srvr then has no Mode line) or does not
    answer at all (refused, reset, or silent for `timeout` seconds): tests
    poll it while servers start, stop and elect."""
    try:
        text = four_letter_word(port, "srvr", timeout=timeout, host=host)
    except (OSError, ConnectionClosed, TimeoutError):
        return None
    for line in text.splitlines():
        if line.startswith("Mode: "):
            return line[len("Mode: "):].strip()
    return None
