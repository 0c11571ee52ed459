"""Kafka TLS and SASL: settings validation, the clients' configuration, the one SSL context, and
the start-up check's one-line errors (against TLS servers on loopback)."""

from __future__ import annotations

import asyncio
import os
import ssl

import pytest
from aiokafka.errors import SaslAuthenticationFailed, UnsupportedSaslMechanismError
from pydantic import SecretStr

from emostream.cli.env_check import load_settings
from emostream.config import WorkerSettings
from emostream.errors import ConfigError, DependencyUnavailable
from emostream.kafka.clients import client_kwargs, make_consumer, make_producer
from emostream.kafka.security import check_connection, client_security, explain, ssl_context
from emostream.settings import KafkaOptions
from tests.tls_certs import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def sasl(mechanism: str, protocol: str = "SASL_PLAINTEXT", **extra) -> KafkaOptions:
    return KafkaOptions(
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username=SecretStr("svc-emostream"),
        sasl_password=SecretStr("s3cret-pass"),
        **extra,
    )


# ---- settings -------------------------------------------------------------------------------


def test_plaintext_by_default_without_tls_or_sasl():
    s = KafkaOptions()
    assert s.security_protocol == "PLAINTEXT" and s.ssl_check_hostname is True
    assert client_security(s) == {"security_protocol": "PLAINTEXT"}
    assert ssl_context(s) is None


@pytest.mark.parametrize(
    "env,variable",
    [
        ({"EMOSTREAM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"}, "EMOSTREAM_KAFKA__SASL_MECHANISM"),
        (
            {
                "EMOSTREAM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "EMOSTREAM_KAFKA__SASL_MECHANISM": "PLAIN",
                "EMOSTREAM_KAFKA__SASL_USERNAME": "u",
            },
            "EMOSTREAM_KAFKA__SASL_PASSWORD",
        ),
        (
            {
                "EMOSTREAM_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "EMOSTREAM_KAFKA__SASL_MECHANISM": "SCRAM-SHA-1",
            },
            "EMOSTREAM_KAFKA__SASL_MECHANISM",
        ),
        ({"EMOSTREAM_KAFKA__SSL_CA_FILE": "/ca.crt"}, "EMOSTREAM_KAFKA__SSL_CA_FILE"),
        ({"EMOSTREAM_KAFKA__SASL_MECHANISM": "PLAIN"}, "EMOSTREAM_KAFKA__SASL_MECHANISM"),
        (
            {
                "EMOSTREAM_KAFKA__SECURITY_PROTOCOL": "SSL",
                "EMOSTREAM_KAFKA__SSL_CERT_FILE": "/c.crt",
            },
            "EMOSTREAM_KAFKA__SSL_KEY_FILE",
        ),
    ],
)
def test_inconsistent_security_settings_name_the_variable(env, variable, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        _load(monkeypatch, env)
    assert str(err.value).startswith(variable), str(err.value)


def _load(monkeypatch, env):
    for key in [k for k in os.environ if k.startswith("EMOSTREAM_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings(WorkerSettings, warn=False)


def test_secrets_are_masked_in_the_config_dump():
    dumped = sasl("PLAIN").model_dump(mode="json")
    assert "s3cret-pass" not in str(dumped) and "svc-emostream" not in str(dumped)


# ---- SASL client configuration --------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
async def test_sasl_reaches_every_client(mechanism, protocol, pki):
    from aiokafka.admin import AIOKafkaAdminClient

    extra = {"ssl_ca_file": str(pki.ca)} if protocol == "SASL_SSL" else {}
    s = sasl(mechanism, protocol, **extra)
    kwargs = client_security(s)
    assert kwargs["security_protocol"] == protocol
    assert kwargs["sasl_mechanism"] == mechanism
    # aiokafka reads SCRAM credentials from the sasl_plain_* arguments as well.
    assert kwargs["sasl_plain_username"] == "svc-emostream"
    assert kwargs["sasl_plain_password"] == "s3cret-pass"
    clients = [
        make_producer(s, "p").client,
        make_consumer(s, ["t"], "g", "c")._client,
        AIOKafkaAdminClient(**client_kwargs(s, "admin"))._client,
    ]
    for client in clients:
        assert client._security_protocol == protocol
        assert client._sasl_mechanism == mechanism
        assert client._sasl_plain_username == "svc-emostream"
        assert client._sasl_plain_password == "s3cret-pass"
        if protocol == "SASL_SSL":
            assert client._ssl_context is clients[0]._ssl_context is not None
        else:
            assert client._ssl_context is None


# ---- the SSL context ------------------------------------------------------------------------


def test_one_context_verifies_the_broker_and_checks_its_name(pki):
    s = KafkaOptions(security_protocol="SSL", ssl_ca_file=str(pki.ca))
    context = ssl_context(s)
    assert context is ssl_context(s.model_copy())  # one per configuration, not per client
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert any("emostream test CA" in str(c.get("subject")) for c in context.get_ca_certs())
    relaxed = ssl_context(s.model_copy(update={"ssl_check_hostname": False}))
    assert relaxed is not context and relaxed.check_hostname is False
    assert relaxed.verify_mode == ssl.CERT_REQUIRED  # the chain is still verified


def test_client_certificate_for_mutual_tls(pki):
    s = KafkaOptions(
        security_protocol="SSL",
        ssl_ca_file=str(pki.ca),
        ssl_cert_file=str(pki.client_cert),
        ssl_key_file=str(pki.client_key),
    )
    assert isinstance(ssl_context(s), ssl.SSLContext)
    wrong = s.model_copy(update={"ssl_key_file": str(pki.server_key)})
    with pytest.raises(ConfigError, match="EMOSTREAM_KAFKA__SSL_CERT_FILE="):
        ssl_context(wrong)


def test_unreadable_files_name_their_variable(pki, tmp_path):
    missing = KafkaOptions(security_protocol="SSL", ssl_ca_file=str(tmp_path / "nope.crt"))
    with pytest.raises(ConfigError, match=r"^EMOSTREAM_KAFKA__SSL_CA_FILE=.*no such file"):
        ssl_context(missing)
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("change-me")
    with pytest.raises(ConfigError, match=r"^EMOSTREAM_KAFKA__SSL_CA_FILE=.*not a readable PEM"):
        ssl_context(KafkaOptions(security_protocol="SSL", ssl_ca_file=str(garbage)))
    no_key = KafkaOptions(
        security_protocol="SSL",
        ssl_cert_file=str(pki.client_cert),
        ssl_key_file=str(tmp_path / "nope.key"),
    )
    with pytest.raises(ConfigError, match=r"^EMOSTREAM_KAFKA__SSL_KEY_FILE=.*no such file"):
        ssl_context(no_key)


# ---- the start-up check ---------------------------------------------------------------------


async def _tls_server(pki, require_client_cert: bool = False):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        context.load_verify_locations(pki.ca)
        context.verify_mode = ssl.CERT_REQUIRED

    async def handle(reader, writer):
        try:
            await reader.read(100)
        except (ssl.SSLError, ConnectionError):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)


@pytest.mark.parametrize(
    "case,match",
    [
        ("wrong_ca", r"EMOSTREAM_KAFKA__SSL_CA_FILE \(.*other-ca.crt\) must hold the CA"),
        ("wrong_name", r"does not name localhost.*EMOSTREAM_KAFKA__SSL_CHECK_HOSTNAME=false"),
        ("no_client_cert", r"EMOSTREAM_KAFKA__SSL_CERT_FILE"),
    ],
)
async def test_refused_handshake_is_one_config_error(case, match, pki, tmp_path):
    server = await _tls_server(pki, require_client_cert=case == "no_client_cert")
    port = server.sockets[0].getsockname()[1]
    host = "127.0.0.1"
    ca = pki.ca
    if case == "wrong_ca":
        ca = pki.other_ca
    if case == "wrong_name":  # the certificate names 127.0.0.1 and localhost: use a name it lacks
        name_pki = make_pki(tmp_path / "named", server_names=("broker.example",))
        server.close()
        server = await _tls_server(name_pki)
        port, ca, host = server.sockets[0].getsockname()[1], name_pki.ca, "localhost"
    s = KafkaOptions(
        bootstrap_servers=f"{host}:{port}", security_protocol="SSL", ssl_ca_file=str(ca)
    )
    try:
        async with asyncio.timeout(10):
            with pytest.raises(ConfigError, match=match) as err:
                await check_connection(s, timeout_s=5)
    finally:
        server.close()
    assert "\n" not in str(err.value)


async def test_tls_to_a_plaintext_listener_names_the_protocol(pki):
    async def handle(reader, writer):
        await reader.read(100)
        writer.write(b"\x00\x00\x00\x02\x00\x00" * 20)  # not a TLS record
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    s = KafkaOptions(
        bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SSL", ssl_ca_file=str(pki.ca)
    )
    try:
        with pytest.raises(ConfigError, match="EMOSTREAM_KAFKA__SECURITY_PROTOCOL=SSL"):
            await check_connection(s, timeout_s=5)
    finally:
        server.close()


async def test_no_broker_is_unavailable_not_a_config_error():
    from emostream.local.servers import free_port

    s = KafkaOptions(bootstrap_servers=f"127.0.0.1:{free_port()}")
    with pytest.raises(DependencyUnavailable, match="EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS"):
        await check_connection(s, timeout_s=2)


@pytest.mark.parametrize(
    "exc",
    [
        SaslAuthenticationFailed("bad credentials"),
        UnsupportedSaslMechanismError("SCRAM-SHA-512 not enabled"),
        KeyError("v"),
    ],
)  # aiokafka's SCRAM client on a server error
def test_refused_login_names_the_sasl_settings(exc):
    error = explain(sasl("SCRAM-SHA-512", "SASL_SSL"), "127.0.0.1:9093", exc)
    assert isinstance(error, ConfigError)
    assert "EMOSTREAM_KAFKA__SASL_MECHANISM=SCRAM-SHA-512" in str(error)
    assert "s3cret-pass" not in str(error)
