"""TLS on secureClientPort, configured with ZooKeeper's ssl.* keys.

The stores are made the way kazoo's own test harness makes them
(kazoo/testing/common.py: a CA, a server key and certificate in a JKS
keystore, the CA in a JKS truststore, a client key and certificate signed by
the CA handed to kazoo as PEM files), but with the JDK's keytool instead of
pyjks. kazoo's TLS test (tests/test_client.py, TestSSLClient) is reproduced
first; then both ports side by side, client-certificate authentication
(ssl.clientAuth need/want/none, the x509 identity in ACLs, compared with the
subject Java itself reports) and the keystore formats ZooKeeper reads (JKS,
PKCS12, PEM; type from ssl.keyStore.type or the file extension).
"""

import os
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl
from kazoo.retry import KazooRetry

from conftest import IS_FK, Server

PASSWORD = "apassword"
CLIENT_DN = "CN=client+UID=c1,OU=kazoo,O=Example\\, Inc,C=US,EMAILADDRESS=ops@example.com"

pytestmark = pytest.mark.skipif(shutil.which("keytool") is None, reason="needs the JDK's keytool")


def keytool(*args, cwd):
    subprocess.run(["keytool", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def signed_key(cwd, alias, dname, store, storetype, ca="ca.p12", ext=None):
    """A key pair in `store`, its certificate signed by the CA, chain imported."""
    common = ["-keystore", store, "-storetype", storetype, "-storepass", PASSWORD]
    keytool("-genkeypair", "-alias", alias, "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
            "-dname", dname, "-keypass", PASSWORD, *common, cwd=cwd)
    keytool("-certreq", "-alias", alias, "-file", f"{alias}.csr", *common, cwd=cwd)
    extra = ["-ext", ext] if ext else []
    keytool("-gencert", "-alias", "ca", "-keystore", ca, "-storetype", "PKCS12", "-storepass", PASSWORD,
            "-infile", f"{alias}.csr", "-outfile", f"{alias}.crt", "-rfc", "-validity", "2", *extra, cwd=cwd)
    ca_pem = ca.replace(".p12", ".pem")
    keytool("-importcert", "-noprompt", "-alias", "ca", "-file", ca_pem, *common, cwd=cwd)
    keytool("-importcert", "-alias", alias, "-file", f"{alias}.crt", *common, cwd=cwd)


def make_ca(cwd, name, cn):
    keytool("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
            "-dname", f"CN={cn}", "-ext", "bc:c", "-keystore", f"{name}.p12", "-storetype", "PKCS12",
            "-storepass", PASSWORD, cwd=cwd)
    keytool("-exportcert", "-alias", "ca", "-rfc", "-file", f"{name}.pem", "-keystore", f"{name}.p12",
            "-storetype", "PKCS12", "-storepass", PASSWORD, cwd=cwd)


def pkcs12_to_pem(cwd, store, alias_prefix):
    """The key and certificate of a PKCS12 store as PEM files (for kazoo)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    with open(os.path.join(cwd, store), "rb") as f:
        key, cert, extra = pkcs12.load_key_and_certificates(f.read(), PASSWORD.encode())
    key_path = os.path.join(cwd, f"{alias_prefix}-key.pem")
    cert_path = os.path.join(cwd, f"{alias_prefix}-cert.pem")
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
        for c in extra or []:
            f.write(c.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def encrypted_pkcs8(key_path):
    """The PEM key at key_path as PBES2-encrypted PKCS#8 (ENCRYPTED PRIVATE KEY)."""
    from cryptography.hazmat.primitives import serialization

    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(PASSWORD.encode()))


class Stores:
    """Every store and PEM file the tests use, made once."""

    def __init__(self, cwd):
        self.dir = cwd
        make_ca(cwd, "ca", "ca.kazoo.org")
        make_ca(cwd, "rogue-ca", "rogue.example.org")
        signed_key(cwd, "server", "CN=localhost", "keystore.jks", "JKS", ext="san=dns:localhost,ip:127.0.0.1")
        keytool("-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "truststore.jks",
                "-storetype", "JKS", "-storepass", PASSWORD, cwd=cwd)
        # The same server key as PKCS12 and as PEM (key, then its chain).
        keytool("-importkeystore", "-srckeystore", "keystore.jks", "-srcstoretype", "JKS",
                "-srcstorepass", PASSWORD, "-destkeystore", "keystore.p12", "-deststoretype", "PKCS12",
                "-deststorepass", PASSWORD, cwd=cwd)
        key, cert = pkcs12_to_pem(cwd, "keystore.p12", "server")
        with open(os.path.join(cwd, "keystore.pem"), "w") as out:
            out.write(open(key).read() + open(cert).read())
        # ZooKeeper's PemReader reads the key as encrypted PKCS#8 whenever a password is set.
        with open(os.path.join(cwd, "keystore-encrypted.pem"), "wb") as out:
            out.write(encrypted_pkcs8(key) + open(cert, "rb").read())
        keytool("-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "truststore.p12",
                "-storetype", "PKCS12", "-storepass", PASSWORD, cwd=cwd)
        shutil.copy(os.path.join(cwd, "keystore.jks"), os.path.join(cwd, "keystore.store"))
        # Clients: one the CA signed, one a CA the server does not trust signed.
        signed_key(cwd, "client", CLIENT_DN, "client.p12", "PKCS12")
        self.client_key, self.client_cert = pkcs12_to_pem(cwd, "client.p12", "client")
        signed_key(cwd, "rogue", "CN=rogue", "rogue.p12", "PKCS12", ca="rogue-ca.p12")
        self.rogue_key, self.rogue_cert = pkcs12_to_pem(cwd, "rogue.p12", "rogue")
        self.ca = os.path.join(cwd, "ca.pem")

    def path(self, name):
        return os.path.join(self.dir, name)

    def java_subject(self, cert_path):
        """The certificate's subject as ZooKeeper's X509AuthenticationProvider
        names it: X500Principal.getName(), asked of Java itself."""
        source = os.path.join(self.dir, "Subject.java")
        with open(source, "w") as f:
            f.write(
                "import java.io.FileInputStream;\n"
                "import java.security.cert.CertificateFactory;\n"
                "import java.security.cert.X509Certificate;\n"
                "public class Subject { public static void main(String[] a) throws Exception {\n"
                "  X509Certificate c = (X509Certificate) CertificateFactory.getInstance(\"X.509\")\n"
                "      .generateCertificate(new FileInputStream(a[0]));\n"
                "  System.out.println(c.getSubjectX500Principal().getName()); } }\n")
        out = subprocess.run(["java", source, cert_path], check=True, capture_output=True, text=True, timeout=120)
        return out.stdout.strip()


@pytest.fixture(scope="module")
def stores():
    cwd = tempfile.mkdtemp(prefix="fk-tls-")
    try:
        yield Stores(cwd)
    finally:
        shutil.rmtree(cwd, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_server(make_server, stores, keystore="keystore.jks", truststore="truststore.jks", **extra):
    port = free_port()
    config = {
        "secureClientPort": port,
        # ZooKeeper serves TLS only with its Netty factory; ferrokeeper warns and ignores the key.
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": stores.path(keystore),
        "ssl.keyStore.password": PASSWORD,
        "ssl.trustStore.location": stores.path(truststore),
        "ssl.trustStore.password": PASSWORD,
    }
    config.update(extra)
    srv = make_server(**config)
    srv.secure_hosts = f"127.0.0.1:{port}"
    srv.secure_port = port
    return srv


def tls_client(srv, stores, cert=True, rogue=False, **kw):
    options = {"use_ssl": True, "ca": stores.ca}
    if cert:
        options["keyfile"] = stores.rogue_key if rogue else stores.client_key
        options["certfile"] = stores.rogue_cert if rogue else stores.client_cert
    client = KazooClient(hosts=srv.secure_hosts, timeout=10.0,
                         connection_retry=KazooRetry(max_tries=2, delay=0.1, max_delay=0.5), **options, **kw)
    return client


@pytest.fixture
def started():
    clients = []

    def start(client, timeout=15):
        clients.append(client)
        client.start(timeout=timeout)
        return client

    yield start
    for client in clients:
        try:
            client.stop()
            client.close()
        except Exception:
            pass


def tls_refusal(srv, stores, rogue):
    """A bare TLS client (no certificate, or the rogue CA's) says ruok on the
    secure port; returns how the server refused it, or None if it answered.
    (With TLS 1.3 the verdict on a client certificate comes after the
    client's side of the handshake, so the refusal may show on the read.)"""
    context = ssl.create_default_context(cafile=stores.ca)
    context.check_hostname = False
    if rogue:
        context.load_cert_chain(stores.rogue_cert, stores.rogue_key)
    with socket.create_connection(("127.0.0.1", srv.secure_port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw) as s:
                s.settimeout(10)
                s.sendall(b"ruok")
                return None if s.recv(4) else "closed without an answer"
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
            return e


@pytest.mark.deadline(120)
def test_kazoo_ssl_client_creates_a_node(make_server, stores, started):
    """kazoo's TestSSLClient.test_create: over TLS with a client certificate,
    create('/1') returns the path and the node exists."""
    srv = tls_server(make_server, stores)
    client = started(tls_client(srv, stores))
    assert client.create("/1") == "/1"
    assert client.exists("/1")


@pytest.mark.deadline(120)
def test_plain_and_tls_ports_side_by_side(make_server, make_kazoo, stores, started):
    """One server, both ports: what a TLS client writes a plain client reads,
    and the other way round."""
    srv = tls_server(make_server, stores)
    secure = started(tls_client(srv, stores))
    plain = make_kazoo(srv)
    secure.create("/side", b"from tls")
    assert plain.get("/side")[0] == b"from tls"
    plain.set("/side", b"from plain")
    assert secure.get("/side")[0] == b"from plain"


@pytest.mark.deadline(120)
def test_client_certificate_gives_the_x509_identity_in_acls(make_server, make_kazoo, stores, started):
    """An authenticated TLS client is `x509:<subject>`, the subject written as
    Java's X500Principal.getName() writes it: an ACL naming it lets that
    client in and keeps others out, and the `auth` scheme expands to it."""
    subject = stores.java_subject(stores.client_cert)
    assert ",1.2.840.113549.1.9.1=#16" in subject, subject  # EMAILADDRESS as OID=#DER
    srv = tls_server(make_server, stores)
    secure = started(tls_client(srv, stores))
    plain = make_kazoo(srv)
    secure.create("/cert-only", b"secret", acl=[make_acl("x509", subject, all=True)])
    assert secure.get("/cert-only")[0] == b"secret"
    with pytest.raises(NoAuthError):
        plain.get("/cert-only")
    # (an `auth` id is ignored; a non-empty one keeps kazoo from sending a null string)
    secure.create("/creator", b"", acl=[make_acl("auth", "-", all=True)])
    acl, _ = secure.get_acls("/creator")
    assert [(a.id.scheme, a.id.id) for a in acl] == [("x509", subject)]
    with pytest.raises(NoAuthError):
        plain.set("/creator", b"x")


@pytest.mark.deadline(120)
def test_client_auth_need_refuses_clients_without_a_trusted_certificate(make_server, stores, started):
    """ssl.clientAuth=need (ZooKeeper's default): no certificate, or one from
    a CA the truststore does not hold, and the TLS handshake fails; a trusted
    one is served."""
    srv = tls_server(make_server, stores)
    mark = srv.log_mark()
    assert tls_refusal(srv, stores, rogue=False) is not None
    assert tls_refusal(srv, stores, rogue=True) is not None
    started(tls_client(srv, stores)).create("/need")
    if IS_FK:
        assert srv.wait_log(r"TLS handshake failed", since=mark), srv.log_tail()


@pytest.mark.deadline(120)
def test_client_auth_want_serves_clients_without_a_certificate(make_server, stores, started):
    """ssl.clientAuth=want: a client without a certificate is served but has
    no x509 identity; one with a trusted certificate has it."""
    srv = tls_server(make_server, stores, **{"ssl.clientAuth": "want"})
    anonymous = started(tls_client(srv, stores, cert=False))
    subject = stores.java_subject(stores.client_cert)
    certified = started(tls_client(srv, stores))
    certified.create("/want", b"", acl=[make_acl("x509", subject, all=True)])
    with pytest.raises(NoAuthError):
        anonymous.get("/want")
    assert "want" in anonymous.get_children("/")


@pytest.mark.deadline(120)
def test_client_auth_none_asks_for_no_certificate(make_server, stores, started):
    """ssl.clientAuth=none: no certificate is asked for and no truststore is
    needed; a client that has one gets no x509 identity from it."""
    srv = tls_server(make_server, stores, **{"ssl.clientAuth": "none", "ssl.trustStore.location": None,
                                             "ssl.trustStore.password": None})
    client = started(tls_client(srv, stores))
    subject = stores.java_subject(stores.client_cert)
    client.create("/none", b"", acl=[make_acl("world", "anyone", read=True),
                                    make_acl("x509", subject, all=True)])
    with pytest.raises(NoAuthError):
        client.set("/none", b"x")


@pytest.mark.deadline(180)
@pytest.mark.parametrize("keystore, truststore, types", [
    ("keystore.p12", "truststore.p12", {}),
    ("keystore.pem", "ca.pem", {"ssl.keyStore.password": None}),
    pytest.param("keystore-encrypted.pem", "ca.pem", {}, marks=pytest.mark.skipif(
        not IS_FK, reason="ZooKeeper 3.8 on Java 17: 'PBES2 SecretKeyFactory not available'")),
    ("keystore.store", "truststore.p12", {"ssl.keyStore.type": "JKS", "ssl.trustStore.type": "PKCS12"}),
    ("keystore.p12", "truststore.jks", {"ssl.keyStore.type": "PKCS12"}),
], ids=["pkcs12-by-extension", "pem-by-extension", "encrypted-pem", "jks-by-type", "pkcs12-by-type"])
def test_keystore_formats(make_server, stores, started, keystore, truststore, types):
    """The keystore and truststore are read in each format ZooKeeper reads,
    the type taken from ssl.*.type or the file's extension."""
    srv = tls_server(make_server, stores, keystore=keystore, truststore=truststore, **types)
    client = started(tls_client(srv, stores))
    client.create("/formats", b"ok")
    assert client.get("/formats")[0] == b"ok"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.deadline(120)
def test_version_1_certificates_as_kazoos_harness_makes_them(make_server, stores, started):
    """kazoo's harness (pyOpenSSL, no set_version) signs version 1 server and
    client certificates, which Java accepts; so does the server, and the v1
    client still gets its x509 identity. (openssl x509 -req signs v1 too.)"""
    cwd = stores.path("v1")
    os.makedirs(cwd, exist_ok=True)

    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-subj", "/CN=ca.kazoo.org",
            "-days", "1", "-out", "ca.pem")
    for name, subject in (("server", "/CN=localhost"), ("client", "/CN=client")):
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-subj", subject,
                "-out", f"{name}.csr")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "7",
                "-days", "1", "-out", f"{name}.pem")
        text = subprocess.run(["openssl", "x509", "-in", f"{name}.pem", "-noout", "-text"], cwd=cwd,
                              check=True, capture_output=True, text=True).stdout
        assert "Version: 1 (0x0)" in text
    with open(os.path.join(cwd, "keystore.pem"), "w") as out:
        out.write(open(os.path.join(cwd, "server.key")).read() + open(os.path.join(cwd, "server.pem")).read())
    srv = tls_server(make_server, stores, keystore="v1/keystore.pem", truststore="v1/ca.pem",
                     **{"ssl.keyStore.password": None, "ssl.trustStore.password": None})
    client = KazooClient(hosts=srv.secure_hosts, timeout=10.0, use_ssl=True, ca=os.path.join(cwd, "ca.pem"),
                         keyfile=os.path.join(cwd, "client.key"), certfile=os.path.join(cwd, "client.pem"),
                         connection_retry=KazooRetry(max_tries=2, delay=0.1, max_delay=0.5))
    started(client)
    assert client.create("/1") == "/1"
    client.create("/v1", b"", acl=[make_acl("x509", "CN=client", all=True)])
    assert client.get("/v1")[0] == b""


@pytest.mark.skipif(not IS_FK, reason="ZooKeeper keeps a client that does not read as long as it sends")
@pytest.mark.deadline(120)
def test_a_tls_client_that_never_reads_is_closed_and_its_slot_freed(make_server, stores, started):
    """Over TLS too, a client pipelining getData of a large node and reading
    nothing is closed after its session timeout at the unsent bound, and
    the connection is really gone: maxClientCnxns has room again."""
    import threading
    import zkwire as w

    srv = tls_server(make_server, stores, maxClientCnxns=2,
                     **{"ferrokeeper.unsentReplyBytesMax": 1024 * 1024})
    creator = started(tls_client(srv, stores))
    creator.create("/big", b"x" * (512 * 1024))
    creator.stop()
    context = ssl.create_default_context(cafile=stores.ca)
    context.check_hostname = False
    context.load_cert_chain(stores.client_cert, stores.client_key)
    raw = socket.create_connection(("127.0.0.1", srv.secure_port), timeout=10)
    sock = context.wrap_socket(raw)
    port = sock.getsockname()[1]
    mark = srv.log_mark()
    try:
        sock.sendall(w.frame(w.connect_request(timeout=2000)))
        request = b"".join(w.frame(w.Writer().int(xid).int(w.OP_GET_DATA).bytes() + w.path_watch_body("/big"))
                           for xid in range(1, 101))

        def pipeline():
            sock.settimeout(2)
            try:
                for _ in range(1000):
                    sock.sendall(request)
            except (OSError, ssl.SSLError):
                pass

        sender = threading.Thread(target=pipeline, daemon=True)
        sender.start()
        assert srv.wait_log(rf"has not read its replies.*127\.0\.0\.1:{port}\b", timeout=30, since=mark), \
            srv.log_tail()
        sender.join(10)
        # The stuck connection no longer counts: two more fit under maxClientCnxns=2.
        for _ in range(2):
            started(tls_client(srv, stores)).exists("/big")
    finally:
        raw.close()


@pytest.mark.skipif(not IS_FK, reason="ZooKeeper starts and fails each TLS handshake instead")
@pytest.mark.deadline(60)
def test_a_keystore_that_cannot_be_opened_stops_the_server_with_its_key_named(stores):
    """A wrong keystore password stops ferrokeeper at start-up with a line
    naming ssl.keyStore and the file."""
    srv = Server({"secureClientPort": free_port(), "ssl.keyStore.location": stores.path("keystore.jks"),
                  "ssl.keyStore.password": "wrong", "ssl.trustStore.location": stores.path("truststore.jks"),
                  "ssl.trustStore.password": PASSWORD})
    try:
        with pytest.raises(RuntimeError, match=r"ssl\.keyStore.*keystore\.jks.*password"):
            srv.start()
    finally:
        srv.cleanup()
