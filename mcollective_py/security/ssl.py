"""The ``ssl`` security provider, byte-compatible with Ruby MCollective 2.12's ``ssl`` plugin.

Wire format (see ``shared/spec`` §3.2 and the captured ``ssl-marshal``/``ssl-yaml`` vectors):

* Request: the body handed to the serializer is the wrapper
  ``{:ssl_msg => <rpc body>, :ssl_ttl => ttl, :ssl_msgtime => msgtime}``; the envelope has
  psk's keys and order, with ``:callerid => "cert=<name>"`` and
  ``:hash => Base64.encode64(RSA PKCS#1 v1.5 SHA-1 signature of the :body bytes)`` (lines of
  60 characters, each ending in a newline).  Requests are signed with the caller's private key.
* Reply: the reply body is serialized as is (no wrapper) and signed with the *server* private
  key, which every node shares; clients verify replies with the server public key.
* ``:body`` is a binary String with Marshal, a UTF-8 String with YAML (``plugin.ssl_serializer``).

Roles (:meth:`SslSecurity.from_config` picks them from ``Config.role``):

========  ====================================  =========================================
role      signs requests/replies with           verifies
========  ====================================  =========================================
client    ``plugin.ssl_client_private``          replies with ``plugin.ssl_server_public``
          callerid ``cert=`` + basename of
          ``plugin.ssl_client_public`` (no .pem)
node      ``plugin.ssl_server_private``          requests from ``cert=<name>`` with
          callerid ``cert=`` + basename of       ``<plugin.ssl_client_cert_dir>/<name>.pem``
          ``plugin.ssl_server_public``           (RSA public key or X509 certificate)
========  ====================================  =========================================

``MCOLLECTIVE_SSL_PRIVATE`` / ``MCOLLECTIVE_SSL_PUBLIC`` override the client keys (``config.py``
maps them onto ``plugin.ssl_client_*``).  A node checks that the signed ``:ssl_ttl`` and
``:ssl_msgtime`` equal the envelope's ``:ttl``/``:msgtime`` and then uses the signed values for
the TTL check; ``plugin.ssl.enforce_ttl = 0`` only logs a mismatch or a missing value.

Errors (the SecurityProvider contract): an unknown ``cert=<name>`` (no ``<name>.pem``) and a
callerid that is not ``cert=<name>`` raise :class:`InvalidCallerId`; a bad signature, and a
signed TTL/msgtime that is missing or differs from the envelope, raise :class:`DigestMismatch`;
an old request raises :class:`MessageExpired`; malformed payloads raise
``MarshalError``/``SerializationError``.  Keys that are missing or unreadable when the provider
is built raise :class:`ConfigError` naming the setting and the path, never the file contents.

Where we knowingly differ from Ruby:

* A signed request body that is not the wrapper Hash (Ruby's pre-2.0 protocol) is refused;
  Ruby accepts it when ``plugin.ssl.enforce_ttl`` is not set at all, leaving its TTL unsigned.
* The callerid must be exactly ``cert=<name>`` with ``<name>`` in ``[A-Za-z0-9_.-]``; Ruby's
  unanchored match also takes ``xcert=<name>``.
* A node signs with ``plugin.ssl_server_private`` even when ``MCOLLECTIVE_SSL_PRIVATE`` is set
  in its environment (Ruby's node would sign with the client key named there).
* Keys are loaded when the provider is built, so a missing key is a start-up ConfigError rather
  than a per-message failure; client public keys on a node are re-read when their file changes.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..config import Config
from ..errors import ConfigError, DigestMismatch, InvalidCallerId, SerializationError
from ..message import Reply, Request
from ..rubytypes import AsciiString, Symbol
from ..serializers import MARSHAL, SERIALIZERS, Serializer
from .base import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_YAML_BYTES,
    Clock,
    SecurityProvider,
    check_body_caller,
    check_callerid,
    field,
    reply_envelope,
    request_envelope,
)

log = logging.getLogger(__name__)

__all__ = [
    "CallerKeys",
    "ClientCertDir",
    "SslSecurity",
    "callerid_for",
    "load_private_key",
    "load_public_key",
]

_CERT_CALLERID = re.compile(r"cert=([A-Za-z0-9_.\-]+)")
_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/= \t\n\v\f\r]+")  # Ruby's check: base64 and \s
_SSL_MSG, _SSL_TTL, _SSL_MSGTIME = Symbol("ssl_msg"), Symbol("ssl_ttl"), Symbol("ssl_msgtime")


# =========================================================================================
# Keys
# =========================================================================================


def _setting(setting: str, path: str | os.PathLike[str], origin: str | None) -> str:
    """``plugin.x = /path (from file:line)``: how errors name a key file."""
    return f"{setting} = {os.fspath(path)}" + (f" (from {origin})" if origin else "")


def _read_key_file(path: str | os.PathLike[str], setting: str, origin: str | None) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{_setting(setting, path, origin)} cannot be read: "
            f"{exc.strerror or type(exc).__name__}; check the path and its permissions"
        ) from None
    if not data.strip():
        raise ConfigError(f"{_setting(setting, path, origin)} is empty; it must hold a PEM key")
    return data


def load_private_key(
    path: str | os.PathLike[str], setting: str, origin: str | None = None
) -> rsa.RSAPrivateKey:
    """Read an unencrypted PEM RSA private key (PKCS#1 or PKCS#8), as ``openssl genrsa`` writes.

    Raises ConfigError naming ``setting`` and ``path`` (never the contents) if the file is
    missing, unreadable, encrypted or not an RSA private key.
    """
    data = _read_key_file(path, setting, origin)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError(
            f"{_setting(setting, path, origin)} is encrypted; MCollective's ssl plugin needs an "
            "unencrypted key (openssl rsa -in KEY -out KEY)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{_setting(setting, path, origin)} is not a PEM RSA private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(
            f"{_setting(setting, path, origin)} holds a {type(key).__name__}, not an RSA key"
        )
    return key


def _public_key_from(data: bytes) -> rsa.RSAPublicKey | None:
    """An RSA public key from PEM/DER public key or PEM/DER X509 certificate bytes, else None."""
    loaders = (
        serialization.load_pem_public_key,
        lambda d: x509.load_pem_x509_certificate(d).public_key(),
        serialization.load_der_public_key,
        lambda d: x509.load_der_x509_certificate(d).public_key(),
    )
    for loader in loaders:
        try:
            key = loader(data)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return key if isinstance(key, rsa.RSAPublicKey) else None
    return None


def load_public_key(
    path: str | os.PathLike[str], setting: str, origin: str | None = None
) -> rsa.RSAPublicKey:
    """Read an RSA public key, or the key of an X509 certificate, like Ruby's ``SSL#read_key``.

    Raises ConfigError naming ``setting`` and ``path`` if it cannot.
    """
    key = _public_key_from(_read_key_file(path, setting, origin))
    if key is None:
        raise ConfigError(
            f"{_setting(setting, path, origin)} is not an RSA public key or X509 certificate"
        )
    return key


def callerid_for(public_key_path: str | os.PathLike[str], setting: str) -> str:
    """``cert=`` + the file's basename without a trailing ``.pem``, as Ruby builds it.

    Only the name matters: the file is not read.  Raises ConfigError if the result is not a
    valid callerid (``^\\w+=[\\w.-]+$``).
    """
    name = re.sub(r"\.pem$", "", os.path.basename(os.fspath(public_key_path)))
    callerid = f"cert={name}"
    if not _CERT_CALLERID.fullmatch(callerid):
        raise ConfigError(
            f"{setting} = {os.fspath(public_key_path)} gives the callerid {callerid!r}, which is not valid; "
            "name the file <name>.pem with letters, digits, '_', '.' or '-' only"
        )
    return callerid


class CallerKeys(Protocol):
    """Where a node finds the public key of ``cert=<name>``."""

    def public_key(self, name: str) -> rsa.RSAPublicKey:
        """The key of caller ``name``; raises InvalidCallerId if there is none (or it is
        unusable)."""
        ...


class ClientCertDir:
    """``<directory>/<name>.pem`` files (RSA public key or X509 certificate, PEM or DER).

    A file is parsed once and re-read when its size or mtime changes; a missing file is looked
    up again on every request.  Thread-safe.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, tuple[tuple[int, int], rsa.RSAPublicKey]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "ClientCertDir(plugin.ssl_client_cert_dir)"

    def public_key(self, name: str) -> rsa.RSAPublicKey:
        path = self.directory / f"{name}.pem"
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            with self._lock:
                cached = self._cache.get(name)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            data = path.read_bytes()
        except OSError:
            raise InvalidCallerId(
                f"Could not find a public key for {name} ({name}.pem in plugin.ssl_client_cert_dir)"
            ) from None
        key = _public_key_from(data)
        if key is None:
            raise InvalidCallerId(
                f"the public key file for {name} ({name}.pem in plugin.ssl_client_cert_dir) "
                "is not an RSA public key or X509 certificate"
            )
        with self._lock:
            self._cache[name] = (stamp, key)
        return key


class _NoCallerKeys:
    def public_key(self, name: str) -> rsa.RSAPublicKey:
        raise InvalidCallerId(
            f"cannot verify a request from cert={name}: no plugin.ssl_client_cert_dir is configured"
        )


# =========================================================================================
# The provider
# =========================================================================================


def _encode64(raw: bytes) -> AsciiString:
    """Ruby ``Base64.encode64``: 60 characters per line, every line ends with a newline."""
    text = base64.b64encode(raw).decode("ascii")
    return AsciiString("".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60)))


def _decode64(text: str) -> bytes:
    """The signature bytes of a ``:hash``; DigestMismatch unless it is base64 (+ whitespace)."""
    if not _BASE64_TEXT.fullmatch(text):
        raise DigestMismatch("the :hash field is not base64")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise DigestMismatch("the :hash field is not valid base64") from None


def _body_bytes(body: bytes | str) -> bytes:
    """The bytes Ruby signs: a binary String as is, a text String in UTF-8."""
    return body if isinstance(body, bytes) else body.encode("utf-8", "surrogateescape")


def _symbol_key(data: Mapping[Any, Any], key: Symbol) -> tuple[bool, Any]:
    for k, v in data.items():
        if type(k) is Symbol and k == key:
            return True, v
    return False, None


class SslSecurity(SecurityProvider):
    """RSA-signed envelopes; see the module docstring for the protocol and the roles.

    Build it with :meth:`client`, :meth:`node` or :meth:`from_config`; the constructor takes
    already-loaded keys (tests and embedders).  ``callerid`` is what :attr:`callerid` stamps on
    requests this side makes.  ``reply_key`` verifies replies (None: replies are refused);
    ``caller_keys`` verifies requests (None: requests are refused).
    """

    name = "ssl"

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey,
        callerid: str,
        *,
        reply_key: rsa.RSAPublicKey | None = None,
        caller_keys: CallerKeys | None = None,
        serializer: Serializer = MARSHAL,
        enforce_ttl: bool = True,
        role: str = "client",
        clock: Clock = time.time,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_yaml_bytes: int = DEFAULT_MAX_YAML_BYTES,
    ) -> None:
        super().__init__(clock=clock, max_bytes=max_bytes, max_yaml_bytes=max_yaml_bytes)
        self._private_key = private_key
        self._callerid = check_callerid(callerid)
        self._reply_key = reply_key
        self._caller_keys: CallerKeys = caller_keys if caller_keys is not None else _NoCallerKeys()
        self.serializer = serializer
        self.enforce_ttl = enforce_ttl
        self.signs_window = enforce_ttl
        self.role = role

    def __repr__(self) -> str:  # never show keys or their paths
        return f"SslSecurity(role={self.role!r}, callerid={self._callerid!r}, serializer={self.serializer.name!r})"

    # ------------------------------------------------------------ construction
    @classmethod
    def client(
        cls,
        private_key: str | os.PathLike[str],
        public_key: str | os.PathLike[str],
        server_public: str | os.PathLike[str],
        *,
        serializer: Serializer = MARSHAL,
        clock: Clock = time.time,
        origins: Mapping[str, str] | None = None,
    ) -> SslSecurity:
        """A client: signs with ``private_key``, callerid from ``public_key``'s file name,
        verifies replies with ``server_public``.  ConfigError if a key cannot be loaded."""
        o = origins or {}
        return cls(
            load_private_key(
                private_key, "plugin.ssl_client_private", o.get("plugin.ssl_client_private")
            ),
            callerid_for(public_key, "plugin.ssl_client_public"),
            reply_key=load_public_key(
                server_public, "plugin.ssl_server_public", o.get("plugin.ssl_server_public")
            ),
            serializer=serializer,
            role="client",
            clock=clock,
        )

    @classmethod
    def node(
        cls,
        server_private: str | os.PathLike[str],
        server_public: str | os.PathLike[str],
        client_cert_dir: str | os.PathLike[str],
        *,
        serializer: Serializer = MARSHAL,
        enforce_ttl: bool = True,
        clock: Clock = time.time,
        origins: Mapping[str, str] | None = None,
    ) -> SslSecurity:
        """A node: verifies requests with ``client_cert_dir/<name>.pem``, signs replies with
        ``server_private``; its own requests (registration) carry ``cert=<server_public name>``.
        ConfigError if a key cannot be loaded or the directory does not exist."""
        o = origins or {}
        if not Path(client_cert_dir).is_dir():
            where = _setting(
                "plugin.ssl_client_cert_dir", client_cert_dir, o.get("plugin.ssl_client_cert_dir")
            )
            raise ConfigError(f"{where} is not a directory; it must hold <caller>.pem public keys")
        return cls(
            load_private_key(
                server_private, "plugin.ssl_server_private", o.get("plugin.ssl_server_private")
            ),
            callerid_for(server_public, "plugin.ssl_server_public"),
            reply_key=load_public_key(
                server_public, "plugin.ssl_server_public", o.get("plugin.ssl_server_public")
            ),
            caller_keys=ClientCertDir(client_cert_dir),
            serializer=serializer,
            enforce_ttl=enforce_ttl,
            role="node",
            clock=clock,
        )

    @classmethod
    def from_config(cls, cfg: Config, *, clock: Clock = time.time) -> SslSecurity:
        """The provider for ``cfg.role`` (``client``, or ``server`` for a node) from the
        ``plugin.ssl_*`` settings.  ConfigError names any missing setting or unusable file."""
        raw = (cfg.get("plugin.ssl_serializer") or "marshal").strip().lower()
        serializer = SERIALIZERS.get(raw)
        if serializer is None:
            raise ConfigError(
                f"plugin.ssl_serializer = {raw!r} (from {cfg.origin('plugin.ssl_serializer')}) is not "
                f"supported; use one of {', '.join(SERIALIZERS)}"
            )
        node = cfg.role in ("server", "node")
        needed = (
            ("plugin.ssl_server_private", "plugin.ssl_server_public", "plugin.ssl_client_cert_dir")
            if node
            else (
                "plugin.ssl_client_private",
                "plugin.ssl_client_public",
                "plugin.ssl_server_public",
            )
        )
        values: dict[str, str] = {}
        for key in needed:
            value = (cfg.get(key) or "").strip()
            if not value:
                hint = (
                    " or export MCOLLECTIVE_SSL_PRIVATE/MCOLLECTIVE_SSL_PUBLIC"
                    if "client_p" in key
                    else ""
                )
                raise ConfigError(
                    f"securityprovider ssl needs {key} in the {'server' if node else 'client'} config{hint}"
                )
            values[key] = value
        origins = {key: cfg.origin(key) or "" for key in needed}
        if node:
            return cls.node(
                values["plugin.ssl_server_private"],
                values["plugin.ssl_server_public"],
                values["plugin.ssl_client_cert_dir"],
                serializer=serializer,
                enforce_ttl=(cfg.get("plugin.ssl.enforce_ttl") or "").strip() != "0",
                clock=clock,
                origins=origins,
            )
        return cls.client(
            values["plugin.ssl_client_private"],
            values["plugin.ssl_client_public"],
            values["plugin.ssl_server_public"],
            serializer=serializer,
            clock=clock,
            origins=origins,
        )

    # ------------------------------------------------------------ signatures
    @property
    def callerid(self) -> str:
        return self._callerid

    def signature(self, body: bytes) -> AsciiString:
        """``Base64.encode64`` of the PKCS#1 v1.5 SHA-1 signature of ``body`` (deterministic)."""
        return _encode64(self._private_key.sign(body, padding.PKCS1v15(), hashes.SHA1()))  # noqa: S303 - protocol

    @staticmethod
    def _verify(key: rsa.RSAPublicKey, body: bytes, claimed: str, what: str) -> None:
        try:
            key.verify(_decode64(claimed), body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - protocol
        except InvalidSignature:
            raise DigestMismatch(f"{what} has an invalid signature") from None

    def _embed(self, body: bytes) -> bytes | str:
        return body.decode("utf-8", "surrogateescape") if self.serializer.text else body

    # ------------------------------------------------------------ requests
    def encode_request(self, req: Request) -> bytes:
        wrapper = {_SSL_MSG: req.body, _SSL_TTL: req.ttl, _SSL_MSGTIME: req.msgtime}
        body = self.serializer.dumps(wrapper)
        return self.serializer.dumps(request_envelope(req, self._embed(body), self.signature(body)))

    def decode_request(self, payload: bytes) -> Request:
        self.check_size(payload, "request")
        env = self.serializer.loads(payload)
        if not isinstance(env, dict):
            raise SerializationError(f"request envelope is a {type(env).__name__}, not a Hash")
        callerid = check_callerid(field(env, "callerid", str, "request"))
        m = _CERT_CALLERID.fullmatch(callerid)
        if m is None:
            raise InvalidCallerId(
                f"callerid {callerid!r} is not of the form cert=<name> that ssl needs"
            )
        key = self._caller_keys.public_key(m[1])
        body = _body_bytes(field(env, "body", (bytes, str), "request"))
        self._verify(key, body, field(env, "hash", str, "request"), f"request from {callerid}")
        ttl = field(env, "ttl", int, "request")
        msgtime = field(env, "msgtime", int, "request")
        requestid = field(env, "requestid", str, "request")
        senderid = field(env, "senderid", str, "request")
        inner = self.serializer.loads(body)
        if not isinstance(inner, dict):
            raise SerializationError(
                f"signed request body is a {type(inner).__name__}, not the {{:ssl_msg, :ssl_ttl, "
                ":ssl_msgtime}} Hash of MCollective 2.x (older clients are not accepted)"
            )
        label = f"request {requestid} from {callerid}@{senderid}"
        ttl = self._signed(inner, _SSL_TTL, ttl, "TTL", label)
        msgtime = self._signed(inner, _SSL_MSGTIME, msgtime, "message time", label)
        self.check_ttl(msgtime, ttl)
        has_msg, msg = _symbol_key(inner, _SSL_MSG)
        if not has_msg:
            msg = {
                k: v
                for k, v in inner.items()
                if not (type(k) is Symbol and k in (_SSL_TTL, _SSL_MSGTIME))
            }
        check_body_caller(msg, callerid)
        return Request(
            agent=field(env, "agent", str, "request"),
            collective=field(env, "collective", str, "request"),
            body=msg,
            senderid=senderid,
            requestid=requestid,
            callerid=callerid,
            ttl=ttl,
            msgtime=msgtime,
            filter=field(env, "filter", dict, "request"),
        )

    def _signed(
        self, inner: Mapping[Any, Any], key: Symbol, outer: int, what: str, label: str
    ) -> int:
        """The signed copy of an envelope value (Ruby ``update_secure_property``)."""
        present, signed = _symbol_key(inner, key)
        valid = present and isinstance(signed, int) and not isinstance(signed, bool)
        if self.enforce_ttl:
            if not present:
                raise DigestMismatch(f"{label} does not have a signed {what}")
            if not valid or signed != outer:
                raise DigestMismatch(
                    f"{label} {what} does not match the signed {what} - possible tampering"
                )
            return outer
        if not present:
            log.warning("%s does not have a signed %s", label, what)
            return outer
        if not valid:
            raise SerializationError(f"{label} has a signed {what} that is not an Integer")
        if signed != outer:
            log.warning(
                "%s %s does not match the signed %s - possible tampering", label, what, what
            )
        return int(signed)

    # ------------------------------------------------------------ replies
    def encode_reply(self, reply: Reply) -> bytes:
        body = self.serializer.dumps(reply.body)
        return self.serializer.dumps(reply_envelope(reply, self._embed(body), self.signature(body)))

    def decode_reply(self, payload: bytes) -> Reply:
        self.check_size(payload, "reply")
        env = self.serializer.loads(payload)
        if not isinstance(env, dict):
            raise SerializationError(f"reply envelope is a {type(env).__name__}, not a Hash")
        if self._reply_key is None:
            raise DigestMismatch("cannot verify replies: no plugin.ssl_server_public is configured")
        body = _body_bytes(field(env, "body", (bytes, str), "reply"))
        senderid = field(env, "senderid", str, "reply")
        self._verify(
            self._reply_key, body, field(env, "hash", str, "reply"), f"reply from {senderid}"
        )
        return Reply(
            senderid=senderid,
            requestid=field(env, "requestid", str, "reply"),
            senderagent=field(env, "senderagent", str, "reply"),
            msgtime=field(env, "msgtime", int, "reply"),
            body=self.serializer.loads(body),
        )
