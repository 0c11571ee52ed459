"""TLS and SASL for every Kafka client, and a start-up check that turns a bad setup into one line.

``client_security`` gives the keyword arguments every aiokafka client takes (producers, consumers,
the admin client, and through the worker's consumer its lag gauge); they share one
``ssl.SSLContext`` per configuration, built once per process. ``check_connection`` connects to
the brokers once before any client is built: aiokafka logs a failed TLS handshake or SASL
exchange and reports only "Unable to bootstrap", while this names the setting to fix.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl

import structlog
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError

from emostream.errors import ConfigError, DependencyUnavailable
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)

VAR = "EMOSTREAM_KAFKA__"
# A handshake fails at once; a bound keeps a silent (firewalled) broker from holding up start-up.
CHECK_TIMEOUT_S = 15.0


def uses_tls(settings: KafkaOptions) -> bool:
    return settings.security_protocol in ("SSL", "SASL_SSL")


def ssl_context(settings: KafkaOptions) -> ssl.SSLContext | None:
    """The process's one SSL context for these settings (None without TLS).

    Raises:
        ConfigError: a CA, certificate or key file cannot be read or is not PEM; the message
            names the variable.
    """
    if not uses_tls(settings):
        return None
    password = settings.ssl_key_password.get_secret_value() if settings.ssl_key_password else None
    return _build_context(
        settings.ssl_ca_file,
        settings.ssl_cert_file,
        settings.ssl_key_file,
        password,
        settings.ssl_check_hostname,
    )


@functools.lru_cache(maxsize=8)
def _build_context(
    ca_file: str | None,
    cert_file: str | None,
    key_file: str | None,
    key_password: str | None,
    check_hostname: bool,
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except FileNotFoundError:
            raise ConfigError(f"{VAR}SSL_CA_FILE={ca_file}: no such file") from None
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(
                f"{VAR}SSL_CA_FILE={ca_file}: not a readable PEM CA certificate ({_reason(exc)})"
            ) from None
    if cert_file:
        for which, path in (("SSL_CERT_FILE", cert_file), ("SSL_KEY_FILE", key_file)):
            if path and not os.path.isfile(path):
                raise ConfigError(f"{VAR}{which}={path}: no such file")
        try:
            context.load_cert_chain(cert_file, key_file, password=key_password)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise ConfigError(
                f"{VAR}SSL_CERT_FILE={cert_file} / {VAR}SSL_KEY_FILE={key_file}: cannot load the "
                f"client certificate and key ({_reason(exc)}); PEM files of a matching pair, "
                f"and {VAR}SSL_KEY_PASSWORD if the key is encrypted"
            ) from None
    context.check_hostname = check_hostname
    return context


def client_security(settings: KafkaOptions) -> dict:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    kwargs: dict = {"security_protocol": settings.security_protocol}
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.security_protocol.startswith("SASL_"):
        # aiokafka takes SCRAM credentials through the sasl_plain_* arguments too.
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        username, password = settings.sasl_username, settings.sasl_password
        # KafkaOptions' validator requires both with a SASL_* protocol.
        assert username is not None and password is not None
        kwargs["sasl_plain_username"] = username.get_secret_value()
        kwargs["sasl_plain_password"] = password.get_secret_value()
    return kwargs


def _reason(exc: BaseException) -> str:
    return (
        getattr(exc, "verify_message", None)
        or getattr(exc, "reason", None)
        or str(exc)
        or type(exc).__name__
    )


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{VAR}BOOTSTRAP_SERVERS={bootstrap!r}: use host:port[,host:port]")
        out.append((host.strip("[]"), int(port)))
    return out


def explain(settings: KafkaOptions, where: str, exc: BaseException) -> ConfigError | None:
    """A ConfigError naming the setting behind a failed handshake or login; None for failures
    that are not configuration (a broker down, a timeout)."""
    reason = _reason(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            return ConfigError(
                f"Kafka TLS handshake with {where} failed: {reason}; the broker's certificate "
                f"does not name {where.rpartition(':')[0]}: connect by a name it lists "
                f"({VAR}BOOTSTRAP_SERVERS) or, for a test cluster only, "
                f"{VAR}SSL_CHECK_HOSTNAME=false"
            )
        ca = settings.ssl_ca_file or "the system's trusted CAs"
        return ConfigError(
            f"Kafka TLS handshake with {where} failed: the broker's certificate is not trusted "
            f"({reason}); {VAR}SSL_CA_FILE ({ca}) must "
            f"hold the CA that signed the broker's certificate"
        )
    if isinstance(exc, ssl.SSLError):
        words = reason.lower().replace("_", " ")
        if "wrong version" in words or "record layer" in words or "packet length" in words:
            return ConfigError(
                f"Kafka at {where} did not answer TLS ({reason}); is it a plaintext listener? "
                f"check {VAR}SECURITY_PROTOCOL={settings.security_protocol}"
            )
        return ConfigError(
            f"Kafka at {where} refused the TLS handshake ({reason}); if it requires a client "
            f"certificate set {VAR}SSL_CERT_FILE and {VAR}SSL_KEY_FILE, else check "
            f"{VAR}SSL_CA_FILE and {VAR}SECURITY_PROTOCOL"
        )
    name = type(exc).__name__
    sasl = settings.security_protocol.startswith("SASL_")
    # aiokafka's SCRAM client raises KeyError/ValueError on a server message that ends the
    # exchange with an error (e=...) instead of the server's signature.
    scram_ended = sasl and isinstance(exc, KeyError | ValueError)
    if "Sasl" in name or "Authentication" in name or "SASL" in str(exc) or scram_ended:
        detail = "the broker ended the SCRAM exchange" if scram_ended else f"{name}: {exc}"
        return ConfigError(
            f"Kafka at {where} refused the SASL login ({detail}); check {VAR}SASL_MECHANISM="
            f"{settings.sasl_mechanism}, {VAR}SASL_USERNAME and {VAR}SASL_PASSWORD"
        )
    if isinstance(exc, ConnectionResetError | asyncio.IncompleteReadError) and uses_tls(settings):
        return ConfigError(
            f"Kafka at {where} closed the connection during the TLS handshake ({name}); check "
            f"{VAR}SECURITY_PROTOCOL={settings.security_protocol} and whether it requires a "
            f"client certificate ({VAR}SSL_CERT_FILE, {VAR}SSL_KEY_FILE)"
        )
    return None


async def check_connection(settings: KafkaOptions, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Connect to the bootstrap servers once (TLS handshake, SASL login) before clients start.

    Returns at the first broker that accepts. Raises ConfigError (one line naming the setting)
    when a broker refuses the handshake or the login, and DependencyUnavailable when none
    answers, instead of leaving aiokafka to retry a setup that cannot work. The transport (TCP,
    TLS, a first request) is tried before the login, so that a broker that drops the connection
    during the login is known to have refused it.
    """
    kwargs = client_security(settings)
    sasl = {k: v for k, v in kwargs.items() if k.startswith("sasl_")}
    transport = {"SASL_SSL": "SSL", "SASL_PLAINTEXT": "PLAINTEXT"}.get(
        settings.security_protocol, settings.security_protocol
    )
    last: BaseException | None = None
    for host, port in _hosts(settings.bootstrap_servers):
        where = f"{host}:{port}"
        try:
            await _connect(settings, host, port, transport, {}, kwargs, timeout_s)
        except Exception as exc:  # noqa: BLE001 - whatever it is, one line, not a traceback
            cause = exc.__cause__ if isinstance(exc, KafkaError) and exc.__cause__ else exc
            error = explain(settings, where, cause)
            if error is not None:
                raise error from None
            last = exc
            log.info("kafka check failed", broker=where, error=repr(exc))
            continue
        if sasl:
            try:
                await _connect(
                    settings, host, port, settings.security_protocol, sasl, kwargs, timeout_s
                )
            except Exception as exc:  # noqa: BLE001 - the transport works: the login failed
                cause = exc.__cause__ if isinstance(exc, KafkaError) and exc.__cause__ else exc
                raise (
                    explain(settings, where, cause)
                    or ConfigError(
                        f"Kafka at {where} refused the SASL login ({type(exc).__name__}: "
                        f"{_reason(exc)}); check {VAR}SASL_MECHANISM={settings.sasl_mechanism}, "
                        f"{VAR}SASL_USERNAME and {VAR}SASL_PASSWORD"
                    )
                ) from None
        return
    reason = f"{type(last).__name__}: {_reason(last)}" if last else "no broker"
    raise DependencyUnavailable(
        f"Kafka not reachable at {settings.bootstrap_servers} "
        f"({reason}); check {VAR}BOOTSTRAP_SERVERS"
    )


async def _connect(
    settings: KafkaOptions,
    host: str,
    port: int,
    protocol: str,
    sasl: dict,
    kwargs: dict,
    timeout_s: float,
) -> None:
    conn = await asyncio.wait_for(
        create_conn(
            host,
            port,
            client_id=f"{settings.client_id}-check",
            request_timeout_ms=int(timeout_s * 1000),
            ssl_context=kwargs.get("ssl_context"),
            security_protocol=protocol,
            **sasl,
        ),
        timeout_s,
    )
    conn.close()
