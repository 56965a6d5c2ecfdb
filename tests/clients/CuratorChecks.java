// Apache Curator recipes end to end against a ZooKeeper server: what
// applications built on Curator actually do; and the plain Java client riding
// through a server restart with persistent watches (setWatches2). Driven by tests/test_curator.py,
// which compiles this file with javac against Debian's Curator 5.4 jars and
// runs one check per JVM:
//
//     java CuratorChecks <check> <host:port> <base path>
//
// Each check uses its own sessions (one CuratorFramework per simulated
// process), asserts real outcomes -- mutual exclusion held, a leader elected
// and handed over, cache events seen, counter values -- prints "ok: ..." lines
// and exits 0, or throws (exit 1). Every wait has a deadline.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.TreeCache;
import org.apache.curator.framework.recipes.cache.TreeCacheEvent;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.curator.retry.RetryNTimes;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public final class CuratorChecks {
    private static final long WAIT_SECONDS = 30;

    private final String hosts;
    private final String base;
    private final List<AutoCloseable> toClose = new ArrayList<>();

    private CuratorChecks(String hosts, String base) {
        this.hosts = hosts;
        this.base = base;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: CuratorChecks <check> <host:port> <base path>");
            System.exit(2);
        }
        CuratorChecks checks = new CuratorChecks(args[1], args[2]);
        try {
            switch (args[0]) {
                case "mutex" -> checks.mutex();
                case "leader-latch" -> checks.leaderLatch();
                case "curator-cache" -> checks.curatorCache();
                case "tree-cache" -> checks.treeCache();
                case "atomic-long" -> checks.atomicLong();
                case "shared-count" -> checks.sharedCount();
                case "persistent-node" -> checks.persistentNode();
                case "service-discovery" -> checks.serviceDiscovery();
                case "zookeeper-restart" -> checks.zookeeperRestart();
                default -> throw new IllegalArgumentException("unknown check " + args[0]);
            }
        } finally {
            checks.closeAll();
        }
        System.out.println("ok: " + args[0]);
        System.exit(0);
    }

    // --- helpers ------------------------------------------------------------------

    /** A started client with its own session, closed at the end of the check. */
    private CuratorFramework client() throws InterruptedException {
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(hosts)
                .sessionTimeoutMs(15_000)
                .connectionTimeoutMs(15_000)
                .retryPolicy(new ExponentialBackoffRetry(100, 5))
                .build();
        client.start();
        check(client.blockUntilConnected((int) WAIT_SECONDS, TimeUnit.SECONDS), "client connected");
        toClose.add(client);
        return client;
    }

    private <T extends AutoCloseable> T closeLater(T resource) {
        toClose.add(resource);
        return resource;
    }

    private void closeAll() {
        // recipes first, clients last: the reverse of creation
        for (int i = toClose.size() - 1; i >= 0; i--) {
            try {
                toClose.get(i).close();
            } catch (Exception | Error ignored) {
                // already closed by the check itself
            }
        }
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError("check failed: " + what);
        }
    }

    private static void checkEqual(Object expected, Object actual, String what) {
        if (!expected.equals(actual)) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    /** Polls until the condition holds; fails after the deadline. */
    private static void waitFor(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + WAIT_SECONDS + " s waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static String text(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    private static void ok(String what) {
        System.out.println("ok: " + what);
    }

    // --- InterProcessMutex ------------------------------------------------------------

    /**
     * Four processes (clients), two threads each, take an InterProcessMutex 15 times
     * per thread and do a read-modify-write of a plain znode while holding it. Never
     * are two holders inside at once, no update is lost, and a contender's timed
     * acquire fails while the lock is held elsewhere.
     */
    private void mutex() throws Exception {
        String lockPath = base + "/lock";
        String counterPath = base + "/counter";
        CuratorFramework setup = client();
        setup.create().creatingParentsIfNeeded().forPath(counterPath, bytes("0"));

        int processes = 4;
        int threadsPerProcess = 2;
        int rounds = 15;
        AtomicInteger inside = new AtomicInteger();
        AtomicInteger maxInside = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(processes * threadsPerProcess);
        List<Future<?>> done = new ArrayList<>();
        for (int p = 0; p < processes; p++) {
            CuratorFramework client = client();
            for (int t = 0; t < threadsPerProcess; t++) {
                InterProcessMutex mutex = new InterProcessMutex(client, lockPath);
                done.add(pool.submit(() -> {
                    for (int i = 0; i < rounds; i++) {
                        check(mutex.acquire(WAIT_SECONDS, TimeUnit.SECONDS), "acquired in time");
                        try {
                            int now = inside.incrementAndGet();
                            maxInside.accumulateAndGet(now, Math::max);
                            // an unprotected read-modify-write: only the lock keeps it exact
                            Stat stat = new Stat();
                            int value = Integer.parseInt(text(client.getData().storingStatIn(stat).forPath(counterPath)));
                            client.setData().withVersion(stat.getVersion()).forPath(counterPath, bytes(Integer.toString(value + 1)));
                            inside.decrementAndGet();
                        } finally {
                            mutex.release();
                        }
                    }
                    return null;
                }));
            }
        }
        for (Future<?> f : done) {
            f.get(120, TimeUnit.SECONDS);
        }
        pool.shutdown();
        checkEqual(1, maxInside.get(), "most holders inside at once");
        int total = processes * threadsPerProcess * rounds;
        checkEqual(Integer.toString(total), text(setup.getData().forPath(counterPath)), "counter after all rounds");
        ok("mutual exclusion held over " + total + " acquisitions");

        // held by one process, a timed acquire elsewhere fails; after release it succeeds
        InterProcessMutex holder = new InterProcessMutex(client(), lockPath);
        InterProcessMutex other = new InterProcessMutex(client(), lockPath);
        check(holder.acquire(WAIT_SECONDS, TimeUnit.SECONDS), "holder acquires");
        check(holder.acquire(WAIT_SECONDS, TimeUnit.SECONDS), "holder re-enters");
        check(!other.acquire(300, TimeUnit.MILLISECONDS), "contender refused while the lock is held");
        checkEqual(1, holder.getParticipantNodes().size(), "participants while held (the refused one withdrew)");
        holder.release();
        check(!other.acquire(300, TimeUnit.MILLISECONDS), "still held after one of two re-entrant releases");
        holder.release();
        check(other.acquire(WAIT_SECONDS, TimeUnit.SECONDS), "contender acquires after release");
        other.release();
        // Curator creates the lock's parent as a container: once empty, the
        // server's container reaper may already have removed it (it did,
        // against ZooKeeper 3.8, with znode.container.checkIntervalMs=200).
        int left;
        try {
            left = setup.getChildren().forPath(lockPath).size();
        } catch (KeeperException.NoNodeException reaped) {
            left = 0;
        }
        checkEqual(0, left, "lock nodes left after release");
        ok("re-entrancy and timed refusal");
    }

    // --- LeaderLatch ------------------------------------------------------------------

    /**
     * Three candidates: exactly one leads and all agree who; when the leader closes its
     * latch, one of the other two takes over; when that one's session ends (its client
     * closes), the last takes over.
     */
    private void leaderLatch() throws Exception {
        String path = base + "/latch";
        Map<String, LeaderLatch> latches = new TreeMap<>();
        Map<String, CuratorFramework> clients = new TreeMap<>();
        for (String id : List.of("a", "b", "c")) {
            CuratorFramework client = client();
            LeaderLatch latch = closeLater(new LeaderLatch(client, path, id));
            latch.start();
            latches.put(id, latch);
            clients.put(id, client);
        }
        String first = awaitOneLeader(latches, 3);
        ok("elected " + first);

        latches.remove(first).close();
        String second = awaitOneLeader(latches, 2);
        check(!second.equals(first), "a new leader after the first closed its latch");
        ok("handed over to " + second + " when " + first + " closed its latch");

        latches.remove(second);
        clients.get(second).close(); // the session goes, and with it the ephemeral
        String third = awaitOneLeader(latches, 1);
        check(!third.equals(second) && !third.equals(first), "the last candidate leads");
        ok("handed over to " + third + " when " + second + "'s session closed");
    }

    /** Waits until exactly one latch leads and every latch names it; returns its id. */
    private static String awaitOneLeader(Map<String, LeaderLatch> latches, int participants) throws Exception {
        waitFor(() -> latches.values().stream().filter(LeaderLatch::hasLeadership).count() == 1, "one leader");
        String leader = latches.entrySet().stream().filter(e -> e.getValue().hasLeadership())
                .map(Map.Entry::getKey).findFirst().orElseThrow();
        check(latches.get(leader).await(WAIT_SECONDS, TimeUnit.SECONDS), "leader's await returns");
        for (LeaderLatch latch : latches.values()) {
            waitFor(() -> {
                try {
                    Participant p = latch.getLeader();
                    return p.isLeader() && p.getId().equals(leader);
                } catch (Exception e) {
                    return false;
                }
            }, latch.getId() + " names " + leader + " as leader");
            // A latch started last may not have created its node yet when the
            // others already agree on the leader: wait for it, not just once.
            waitFor(() -> {
                try {
                    return latch.getParticipants().size() == participants;
                } catch (Exception e) {
                    return false;
                }
            }, participants + " participants seen by " + latch.getId());
            Collection<Participant> all = latch.getParticipants();
            checkEqual(participants, all.size(), "participants seen by " + latch.getId());
        }
        checkEqual(1L, latches.values().stream().filter(LeaderLatch::hasLeadership).count(), "leaders");
        return leader;
    }

    // --- CuratorCache (persistent recursive watch) -------------------------------------

    /**
     * A CuratorCache (Curator 5 builds it on a persistent recursive watch, addWatch)
     * sees the initial tree, then every create, change and delete made by another
     * session, in order, with the data; its view matches the server's at the end.
     */
    private void curatorCache() throws Exception {
        String root = base + "/cache";
        CuratorFramework writer = client();
        writer.create().creatingParentsIfNeeded().forPath(root, bytes("r"));
        writer.create().forPath(root + "/pre", bytes("p0"));
        List<String> events = new CopyOnWriteArrayList<>();
        AtomicInteger initialized = new AtomicInteger();
        CuratorCache cache = closeLater(CuratorCache.build(client(), root));
        cache.listenable().addListener(CuratorCacheListener.builder()
                .forAll((type, oldData, data) -> {
                    ChildData d = data != null ? data : oldData;
                    events.add(type + " " + d.getPath().substring(root.length()) + " " + text(d.getData()));
                })
                .forInitialized(initialized::incrementAndGet)
                .build());
        cache.start();
        waitFor(() -> initialized.get() == 1, "cache initialized");
        checkEqual(List.of("NODE_CREATED  r", "NODE_CREATED /pre p0"), sorted(events), "initial events");
        events.clear();

        // one change at a time: the cache reads the data after each event, so a
        // burst of writes could fold into one event
        List<String> expected = new ArrayList<>();
        writer.create().forPath(root + "/a", bytes("1"));
        awaitEvent(events, expected, "NODE_CREATED /a 1");
        writer.create().forPath(root + "/a/deep", bytes("d"));
        awaitEvent(events, expected, "NODE_CREATED /a/deep d");
        writer.setData().forPath(root + "/a", bytes("2"));
        awaitEvent(events, expected, "NODE_CHANGED /a 2");
        writer.delete().forPath(root + "/a/deep");
        awaitEvent(events, expected, "NODE_DELETED /a/deep d");
        writer.delete().forPath(root + "/pre");
        awaitEvent(events, expected, "NODE_DELETED /pre p0");
        checkEqual(expected, new ArrayList<>(events), "cache events in order, nothing else");
        Map<String, String> view = cache.stream().collect(Collectors.toMap(
                d -> d.getPath(), d -> String.valueOf(text(d.getData())), (x, y) -> x, TreeMap::new));
        checkEqual(Map.of(root, "r", root + "/a", "2"), view, "cache contents");
        ok("CuratorCache saw " + expected.size() + " changes in order");
    }

    /** Waits for the next event and checks it is the expected one. */
    private static void awaitEvent(List<String> events, List<String> expected, String event) throws InterruptedException {
        expected.add(event);
        waitFor(() -> events.size() >= expected.size(), event);
        checkEqual(expected, new ArrayList<>(events.subList(0, expected.size())), "cache events");
    }

    private static List<String> sorted(List<String> list) {
        List<String> copy = new ArrayList<>(list);
        copy.sort(null);
        return copy;
    }

    // --- TreeCache (one-shot watches re-armed) -----------------------------------------

    /**
     * A TreeCache (one-shot data and child watches, re-armed after each event) sees
     * every add, update and removal below its root made by another session, including
     * a subtree removed child first, and its current data matches the server's.
     * (TreeCache is deprecated in favour of CuratorCache, and still widely used.)
     */
    @SuppressWarnings("deprecation")
    private void treeCache() throws Exception {
        String root = base + "/tree";
        CuratorFramework writer = client();
        writer.create().creatingParentsIfNeeded().forPath(root, bytes("r"));
        List<String> events = new CopyOnWriteArrayList<>();
        TreeCache cache = closeLater(TreeCache.newBuilder(client(), root).build());
        cache.getListenable().addListener((c, event) -> {
            if (event.getType() == TreeCacheEvent.Type.INITIALIZED) {
                events.add("INITIALIZED");
            } else if (event.getData() != null) {
                events.add(event.getType() + " " + event.getData().getPath().substring(root.length()) + " "
                        + text(event.getData().getData()));
            }
        });
        cache.start();
        waitFor(() -> events.contains("INITIALIZED"), "tree cache initialized");
        checkEqual(List.of("NODE_ADDED  r", "INITIALIZED"), new ArrayList<>(events), "initial events");
        events.clear();

        writer.create().forPath(root + "/x", bytes("1"));
        waitFor(() -> events.contains("NODE_ADDED /x 1"), "x added");
        writer.create().forPath(root + "/x/y", bytes("2"));
        waitFor(() -> events.contains("NODE_ADDED /x/y 2"), "x/y added");
        writer.setData().forPath(root + "/x", bytes("3"));
        waitFor(() -> events.contains("NODE_UPDATED /x 3"), "x updated");
        writer.delete().deletingChildrenIfNeeded().forPath(root + "/x");
        waitFor(() -> events.contains("NODE_REMOVED /x 3"), "x removed");
        waitFor(() -> events.contains("NODE_REMOVED /x/y 2"), "x/y removed");
        checkEqual(5, events.size(), "tree cache events: " + events);
        check(cache.getCurrentData(root + "/x") == null, "x gone from the cache");
        checkEqual("r", text(cache.getCurrentData(root).getData()), "root data in the cache");
        ok("TreeCache saw adds, an update and removals");
    }

    // --- DistributedAtomicLong ---------------------------------------------------------

    /**
     * Three processes increment one DistributedAtomicLong 25 times each, concurrently
     * (optimistic setData with versions underneath): every increment succeeds, the
     * pre/post values are consecutive and unique, the total is exact, and a
     * compareAndSet with a stale expected value fails.
     */
    private void atomicLong() throws Exception {
        String path = base + "/atomic";
        int processes = 3;
        int rounds = 25;
        ExecutorService pool = Executors.newFixedThreadPool(processes);
        Map<Long, Boolean> postValues = new ConcurrentHashMap<>();
        List<Future<?>> done = new ArrayList<>();
        for (int p = 0; p < processes; p++) {
            DistributedAtomicLong counter = new DistributedAtomicLong(client(), path, new RetryNTimes(1000, 1));
            done.add(pool.submit(() -> {
                for (int i = 0; i < rounds; i++) {
                    AtomicValue<Long> v = counter.increment();
                    check(v.succeeded(), "increment succeeded");
                    checkEqual(v.preValue() + 1, (long) v.postValue(), "post = pre + 1");
                    check(postValues.put(v.postValue(), true) == null, "post value " + v.postValue() + " unique");
                }
                return null;
            }));
        }
        for (Future<?> f : done) {
            f.get(120, TimeUnit.SECONDS);
        }
        pool.shutdown();
        long total = (long) processes * rounds;
        DistributedAtomicLong reader = new DistributedAtomicLong(client(), path, new RetryNTimes(10, 10));
        AtomicValue<Long> value = reader.get();
        check(value.succeeded(), "get succeeded");
        checkEqual(total, value.postValue(), "final value");
        checkEqual(total, (long) postValues.size(), "distinct post values");
        check(!reader.compareAndSet(total - 1, 0L).succeeded(), "compareAndSet with a stale expected value fails");
        check(reader.compareAndSet(total, 1000L).succeeded(), "compareAndSet with the current value succeeds");
        checkEqual(1000L, reader.get().postValue(), "value after compareAndSet");
        ok("DistributedAtomicLong counted " + total + " increments exactly");
    }

    // --- SharedCount -------------------------------------------------------------------

    /**
     * Two processes share a SharedCount: a change made by one reaches the other's
     * listener and getCount; a trySetCount against a stale version fails and leaves
     * the value alone.
     */
    private void sharedCount() throws Exception {
        String path = base + "/shared";
        SharedCount one = closeLater(new SharedCount(client(), path, 7));
        SharedCount two = closeLater(new SharedCount(client(), path, 99));
        one.start();
        two.start();
        checkEqual(7, two.getCount(), "the second sees the first's seed, not its own");
        List<Integer> heard = new CopyOnWriteArrayList<>();
        two.addListener(new SharedCountListener() {
            @Override
            public void countHasChanged(SharedCountReader reader, int newCount) {
                heard.add(newCount);
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState state) {
            }
        });
        VersionedValue<Integer> before = one.getVersionedValue();
        one.setCount(42);
        waitFor(() -> heard.contains(42), "listener hears 42");
        waitFor(() -> two.getCount() == 42, "the second reads 42");
        check(!one.trySetCount(before, 1), "trySetCount with a stale version fails");
        checkEqual(42, two.getCount(), "value after the failed trySetCount");
        VersionedValue<Integer> current = two.getVersionedValue();
        check(two.trySetCount(current, 43), "trySetCount with the current version succeeds");
        waitFor(() -> one.getCount() == 43, "the first reads 43");
        ok("SharedCount propagated 42 and 43; stale trySetCount refused");
    }

    // --- PersistentNode ----------------------------------------------------------------

    /**
     * An ephemeral PersistentNode is created, recreated by the recipe when another
     * session deletes it, carries setData changes, and is gone once closed.
     */
    private void persistentNode() throws Exception {
        String path = base + "/member";
        CuratorFramework owner = client();
        CuratorFramework other = client();
        other.create().creatingParentsIfNeeded().forPath(base + "/placeholder");
        PersistentNode node = closeLater(new PersistentNode(owner, CreateMode.EPHEMERAL, false, path, bytes("v1")));
        node.start();
        check(node.waitForInitialCreate(WAIT_SECONDS, TimeUnit.SECONDS), "initial create");
        checkEqual(path, node.getActualPath(), "actual path");
        Stat stat = other.checkExists().forPath(path);
        check(stat != null, "node exists");
        checkEqual(owner.getZookeeperClient().getZooKeeper().getSessionId(), stat.getEphemeralOwner(), "ephemeral owner");
        checkEqual("v1", text(other.getData().forPath(path)), "initial data");

        long czxid = stat.getCzxid();
        other.delete().forPath(path);
        waitFor(() -> {
            try {
                Stat s = other.checkExists().forPath(path);
                return s != null && s.getCzxid() != czxid;
            } catch (Exception e) {
                return false;
            }
        }, "node recreated after another session deleted it");
        checkEqual("v1", text(other.getData().forPath(path)), "data after recreation");

        node.setData(bytes("v2"));
        waitFor(() -> {
            try {
                return "v2".equals(text(other.getData().forPath(path)));
            } catch (Exception e) {
                return false;
            }
        }, "setData visible to another session");
        node.close();
        check(other.checkExists().forPath(path) == null, "node gone after close");
        ok("PersistentNode created, recreated, updated and removed");
    }

    // --- service discovery ---------------------------------------------------------------

    /**
     * Two processes register instances of service "api"; a third discovers both with
     * their addresses, ports and payloads; its ServiceCache drops an instance that is
     * unregistered and one whose session ends.
     */
    private void serviceDiscovery() throws Exception {
        String path = base + "/services";
        CuratorFramework first = client();
        CuratorFramework second = client();
        ServiceInstance<String> one = ServiceInstance.<String>builder().name("api").id("one")
                .address("127.0.0.1").port(8081).payload("first").build();
        ServiceInstance<String> two = ServiceInstance.<String>builder().name("api").id("two")
                .address("127.0.0.1").port(8082).payload("second").build();
        ServiceInstance<String> three = ServiceInstance.<String>builder().name("api").id("three")
                .address("127.0.0.1").port(8083).payload("third").build();
        ServiceDiscovery<String> d1 = closeLater(ServiceDiscoveryBuilder.builder(String.class).client(first)
                .basePath(path).thisInstance(one).build());
        ServiceDiscovery<String> d2 = closeLater(ServiceDiscoveryBuilder.builder(String.class).client(second)
                .basePath(path).build());
        d1.start();
        d2.start();
        d2.registerService(two);
        d2.registerService(three);

        ServiceDiscovery<String> observer = closeLater(ServiceDiscoveryBuilder.builder(String.class).client(client())
                .basePath(path).build());
        observer.start();
        checkEqual(List.of("api"), new ArrayList<>(observer.queryForNames()), "service names");
        Map<String, String> found = new TreeMap<>();
        for (ServiceInstance<String> i : observer.queryForInstances("api")) {
            found.put(i.getId(), i.getAddress() + ":" + i.getPort() + " " + i.getPayload());
        }
        checkEqual(Map.of("one", "127.0.0.1:8081 first", "two", "127.0.0.1:8082 second",
                "three", "127.0.0.1:8083 third"), found, "instances found");
        checkEqual(8082, observer.queryForInstance("api", "two").getPort(), "one instance by id");

        ServiceCache<String> cache = closeLater(observer.serviceCacheBuilder().name("api").build());
        cache.start();
        waitFor(() -> cache.getInstances().size() == 3, "cache holds three instances");
        d2.unregisterService(three);
        waitFor(() -> ids(cache).equals(List.of("one", "two")), "cache drops the unregistered instance");
        toClose.remove(d2); // closing it would try to unregister through the closed client
        second.close(); // "two" was registered by this session: its ephemeral goes
        waitFor(() -> ids(cache).equals(List.of("one")), "cache drops the instance whose session ended");
        checkEqual(1, observer.queryForInstances("api").size(), "instances queried at the end");
        ok("service discovery found, cached and dropped instances");
    }

    private static List<String> ids(ServiceCache<String> cache) {
        return cache.getInstances().stream().map(ServiceInstance::getId).sorted().collect(Collectors.toList());
    }

    // --- the Java client across a server restart -----------------------------------

    /**
     * The plain Java client (zookeeper.jar) rides through a server restart that the
     * driver performs after "ready": the session reconnects with the same id; the
     * persistent, persistent-recursive and one-shot watches set before the restart,
     * which the client re-sends in setWatches2 on reconnect, fire nothing for the
     * unchanged nodes and then fire for changes made after the restart (the
     * persistent ones on every change); the ephemeral survived.
     */
    private void zookeeperRestart() throws Exception {
        List<String> states = new CopyOnWriteArrayList<>();
        ZooKeeper zk = new ZooKeeper(hosts, 30_000, event -> {
            if (event.getType() == Watcher.Event.EventType.None) {
                states.add(event.getState().name());
            }
        });
        toClose.add(zk::close);
        waitFor(() -> states.contains("SyncConnected"), "connected");
        String data = base + "/data";
        String one = base + "/one";
        String tree = base + "/tree";
        String eph = base + "/eph";
        var acl = ZooDefs.Ids.OPEN_ACL_UNSAFE;
        zk.create(base, new byte[0], acl, CreateMode.PERSISTENT);
        zk.create(data, bytes("0"), acl, CreateMode.PERSISTENT);
        zk.create(one, bytes("0"), acl, CreateMode.PERSISTENT);
        zk.create(tree, new byte[0], acl, CreateMode.PERSISTENT);
        zk.create(eph, bytes("mine"), acl, CreateMode.EPHEMERAL);
        List<String> events = new CopyOnWriteArrayList<>();
        Watcher recorder = event -> {
            if (event.getType() != Watcher.Event.EventType.None) {
                events.add(event.getType() + " " + event.getPath().substring(base.length()));
            }
        };
        zk.addWatch(data, recorder, AddWatchMode.PERSISTENT);
        zk.addWatch(tree, recorder, AddWatchMode.PERSISTENT_RECURSIVE);
        zk.getData(one, recorder, null);
        long sessionId = zk.getSessionId();

        System.out.println("ready");
        System.out.flush();
        waitFor(() -> states.contains("Disconnected"), "the connection to drop");
        waitFor(() -> states.size() >= 3 && states.get(states.size() - 1).equals("SyncConnected"), "reconnected");
        checkEqual(List.of("SyncConnected", "Disconnected", "SyncConnected"), new ArrayList<>(states), "states");
        checkEqual(sessionId, zk.getSessionId(), "session id after the restart");
        syncBarrier(zk);
        checkEqual(List.of(), new ArrayList<>(events), "events on reconnect with nothing changed");
        System.out.println("reconnected");
        System.out.flush();

        ZooKeeper other = new ZooKeeper(hosts, 30_000, event -> { });
        toClose.add(other::close);
        waitFor(() -> other.getState().isConnected(), "second client connected");
        checkEqual(sessionId, other.exists(eph, false).getEphemeralOwner(), "ephemeral owner after the restart");
        other.setData(data, bytes("1"), -1);
        other.setData(data, bytes("2"), -1);
        other.setData(one, bytes("1"), -1);
        other.setData(one, bytes("2"), -1); // the one-shot watch is spent by now
        other.create(tree + "/x", new byte[0], acl, CreateMode.PERSISTENT);
        other.create(tree + "/x/y", new byte[0], acl, CreateMode.PERSISTENT);
        List<String> expected = List.of("NodeDataChanged /data", "NodeDataChanged /data", "NodeDataChanged /one",
                "NodeCreated /tree/x", "NodeCreated /tree/x/y");
        waitFor(() -> events.size() >= expected.size(), "five events");
        syncBarrier(zk);
        checkEqual(expected, new ArrayList<>(events), "events after the restart");
        ok("Java client kept its session and its watches across the restart");
    }

    /** A sync whose callback runs on the event thread after every earlier event. */
    private static void syncBarrier(ZooKeeper zk) throws InterruptedException {
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(1);
        zk.sync("/", (rc, path, ctx) -> done.countDown(), null);
        check(done.await(WAIT_SECONDS, TimeUnit.SECONDS), "sync callback");
    }
}
