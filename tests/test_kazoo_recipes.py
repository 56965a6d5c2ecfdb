"""kazoo's recipes end to end: what applications built on kazoo actually do
(locks from ephemeral-sequential nodes and watches, counters from versioned
setData, elections, queues, DataWatch/ChildrenWatch re-arming)."""

import threading

from conftest import wait_until


def test_lock_mutual_exclusion(make_kazoo, base):
    """Two clients contending for a kazoo Lock never hold it together, and the waiter
    gets it as soon as the holder releases."""
    a, b = make_kazoo(), make_kazoo()
    lock_a, lock_b = a.Lock(f"{base}/lock", "a"), b.Lock(f"{base}/lock", "b")
    assert lock_a.acquire(timeout=5)
    got_b = threading.Event()

    def contend():
        if lock_b.acquire(timeout=30):
            got_b.set()

    t = threading.Thread(target=contend, daemon=True)
    t.start()
    # b has queued its node behind a's: from here on only a's release lets it in
    wait_until(lambda: lock_b.contenders() == ["a", "b"], timeout=10, message="b queued behind a")
    assert not got_b.is_set() and lock_a.is_acquired
    lock_a.release()
    assert got_b.wait(10)
    assert lock_b.contenders() == ["b"]
    lock_b.release()
    t.join(5)


def test_lock_released_when_holder_session_closes(make_kazoo, base):
    """A holder whose session ends loses the lock (its ephemeral node goes)."""
    a, b = make_kazoo(), make_kazoo()
    assert a.Lock(f"{base}/lock").acquire(timeout=5)
    a.stop()
    assert b.Lock(f"{base}/lock").acquire(timeout=5)


def test_counter(make_kazoo, base):
    """kazoo's Counter (get, then setData with the version) counts exactly under contention."""
    clients = [make_kazoo() for _ in range(3)]

    def bump(client):
        counter = client.Counter(f"{base}/count")
        for _ in range(20):
            counter += 1

    threads = [threading.Thread(target=bump, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert clients[0].Counter(f"{base}/count").value == 60


def test_election(make_kazoo, base):
    """Exactly one of two candidates leads; when it leaves, the other takes over."""
    a, b = make_kazoo(), make_kazoo()
    leading = []
    stop = {"a": threading.Event(), "b": threading.Event()}

    def run(client, name):
        def lead():
            leading.append(name)
            stop[name].wait(10)

        client.Election(f"{base}/election", name).run(lead)

    ta = threading.Thread(target=run, args=(a, "a"), daemon=True)
    ta.start()
    wait_until(lambda: leading == ["a"], timeout=5, message="a leads")
    tb = threading.Thread(target=run, args=(b, "b"), daemon=True)
    tb.start()
    # b is a candidate behind a: from here on only a's leaving lets it lead
    wait_until(lambda: a.Election(f"{base}/election").contenders() == ["a", "b"], timeout=10,
               message="b a candidate")
    assert leading == ["a"]
    stop["a"].set()
    wait_until(lambda: leading == ["a", "b"], timeout=5, message="b takes over")
    stop["b"].set()
    ta.join(5)
    tb.join(5)


def test_queue(make_kazoo, base):
    """kazoo's Queue (sequential nodes) hands out items in order, each once."""
    producer, consumer = make_kazoo(), make_kazoo()
    q = producer.Queue(f"{base}/queue")
    for i in range(10):
        q.put(f"item{i}".encode())
    cq = consumer.Queue(f"{base}/queue")
    got = [cq.get() for _ in range(10)]
    assert got == [f"item{i}".encode() for i in range(10)]
    assert cq.get() is None


def test_data_and_children_watch_recipes(make_kazoo, zk, base):
    """DataWatch and ChildrenWatch re-arm after each event and see every change in order."""
    writer = make_kazoo()
    writer.create(f"{base}/dw", b"0")
    seen_data, seen_children = [], []
    zk.DataWatch(f"{base}/dw", lambda data, stat: seen_data.append(data))
    zk.ChildrenWatch(base, lambda children: seen_children.append(sorted(children)))
    for i in range(1, 4):
        writer.set(f"{base}/dw", str(i).encode())
        wait_until(lambda: seen_data and seen_data[-1] == str(i).encode(), timeout=5, message=f"data {i}")
    writer.create(f"{base}/c1")
    wait_until(lambda: seen_children[-1] == ["c1", "dw"], timeout=5, message="child c1")
    writer.delete(f"{base}/c1")
    wait_until(lambda: seen_children[-1] == ["dw"], timeout=5, message="c1 gone")
    assert seen_data == [b"0", b"1", b"2", b"3"]
