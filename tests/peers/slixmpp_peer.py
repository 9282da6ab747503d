#!/usr/bin/python3
"""A third-party XMPP file-transfer peer built on slixmpp, for Skiff's end-to-end tests.

Run it with Debian's interpreter (``/usr/bin/python3``, package ``python3-slixmpp``
1.8.3); the ``python3`` first on PATH may lack slixmpp.

    slixmpp_peer.py --jid JID --password PW --server HOST:PORT --ca-file PEM
                    [--resource R] [--plaintext] [-v] COMMAND ...

    send    --to FULLJID --file PATH [--method ibb|s5b|any] [--proxy PROXYJID]
            [--timeout SECS] [--sid SID] [--mime-type TYPE] [--block-size N]
    receive --dir DIR [--count N] [--timeout SECS] [--method ibb|s5b|any] [--reject]
            [--keep-going] [--s5b-native] [--range-offset N] [--range-length N]
    share   --to JID --file PATH [--desc TEXT] [--bare] [--service JID] [--timeout SECS]
    send-oob --to FULLJID (--file PATH | --url URL) [--desc TEXT] [--timeout SECS]
    receive-oob  --dir DIR [--count N] [--timeout SECS] [--reject | --fail] [--keep-going]
    receive-link --dir DIR [--count N] [--timeout SECS] [--body-links] [--keep-going]
    online  [--seconds S]

send/receive: XEP-0096 SI file transfer (IBB, SOCKS5). share: XEP-0363 HTTP upload plus
a chat message with the link (jabber:x:oob). send-oob/receive-oob: XEP-0066 jabber:iq:oob.
receive-link: downloads the jabber:x:oob links of chat messages. HTTP goes to loopback
hosts only (localhost, *.localhost, 127.0.0.0/8, ::1), https verified with --ca-file.

Stdout carries JSON lines only (one object a line, flushed); logs go to stderr.
See README.md next to this file for the events, the exit codes and the slixmpp bugs
this script works around.
"""

import argparse
import asyncio
import datetime as dt
import hashlib
import http.client
import http.server
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

try:
    from slixmpp import ClientXMPP, JID, Iq, Message
    from slixmpp.exceptions import IqError, IqTimeout, XMPPError
    from slixmpp.xmlstream import ElementBase, register_stanza_plugin
    from slixmpp.plugins.xep_0096 import File
    from slixmpp.plugins.xep_0082 import format_datetime
    from slixmpp.xmlstream.handler import CoroutineCallback
    from slixmpp.xmlstream.matcher import StanzaPath
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stdout.write(json.dumps({"event": "failed", "error": "slixmpp missing: %s "
                                 "(use /usr/bin/python3 with python3-slixmpp)" % exc}) + "\n")
    sys.stdout.flush()
    sys.exit(2)

NS_SI = 'http://jabber.org/protocol/si'
NS_FT = 'http://jabber.org/protocol/si/profile/file-transfer'
NS_S5B = 'http://jabber.org/protocol/bytestreams'
NS_IBB = 'http://jabber.org/protocol/ibb'
NS_XDATA = 'jabber:x:data'
NS_FEATURE_NEG = 'http://jabber.org/protocol/feature-neg'

NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_UPLOAD = 'urn:xmpp:http:upload:0'
NS_IQ_OOB = 'jabber:iq:oob'
NS_X_OOB = 'jabber:x:oob'

METHOD_NS = {'ibb': NS_IBB, 's5b': NS_S5B}
METHOD_NAME = {NS_IBB: 'ibb', NS_S5B: 's5b'}

EXIT_OK = 0
EXIT_FAILED = 1      # transfer failed, offer rejected, protocol error
EXIT_USAGE = 2       # bad arguments
EXIT_CONNECT = 3     # could not connect / authenticate / no TLS
EXIT_TIMEOUT = 4     # --timeout reached
EXIT_INTERRUPTED = 5  # SIGTERM/SIGINT before the command finished (online: 0)

CONNECT_TIMEOUT = 30.0
S5B_CONNECT_TIMEOUT = 10.0
READ_CHUNK = 256 * 1024
HTTP_TIMEOUT = 60.0   # seconds without progress on an HTTP socket
HTTP_MAX_REDIRECTS = 5
HTTP_USER_AGENT = 'skiff-tests-slixmpp-peer/1'
# Slot headers a client may pass on to the PUT (XEP-0363 §5).
UPLOAD_HEADERS = ('authorization', 'cookie', 'expires')

log = logging.getLogger('slixmpp_peer')


_emit_lock = threading.Lock()


def emit(event, **fields):
    """One JSON object a line on stdout, flushed (also from the HTTP threads)."""
    obj = {"event": event}
    obj.update(fields)
    try:
        with _emit_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        # The reader went away: keep running (a test may only read the first lines).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass


class PeerFailure(Exception):
    """A failure reported as {"event":"failed"} with an exit code."""

    def __init__(self, error, code=EXIT_FAILED, **fields):
        super().__init__(error)
        self.error = error
        self.code = code
        self.fields = fields


def is_loopback_host(host):
    """Only loopback addresses (or the name localhost) are ever connected to."""
    if host is None:
        return False
    host = str(host).strip()
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    if host.lower() == 'localhost':
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_hostport(value):
    if value.startswith('['):
        host, _, rest = value[1:].partition(']')
        port = rest.lstrip(':')
    else:
        host, _, port = value.rpartition(':')
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError('expected HOST:PORT, got %r' % value)
    return host, int(port)


def safe_name(name):
    """Basename only: no directories, no NULs, never '', '.' or '..'."""
    name = (name or '').replace('\\', '/').split('/')[-1]
    name = ''.join(ch for ch in name if ch >= ' ' and ch != '\x7f').strip()
    if name in ('', '.', '..'):
        name = 'received-file'
    encoded = name.encode('utf-8')
    if len(encoded) > 200:
        name = encoded[:200].decode('utf-8', 'ignore')
    return name


def unique_path(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return path
    stem, ext = os.path.splitext(name)
    n = 1
    while True:
        candidate = os.path.join(directory, '%s (%d)%s' % (stem, n, ext))
        if not os.path.exists(candidate):
            return candidate
        n += 1


def form_values(si_xml, var):
    """Values of a field in the feature-neg form (options for a form, values for a submit)."""
    out = []
    feature = si_xml.find('{%s}feature' % NS_FEATURE_NEG)
    if feature is None:
        return out
    form = feature.find('{%s}x' % NS_XDATA)
    if form is None:
        return out
    for field in form.findall('{%s}field' % NS_XDATA):
        if field.get('var') != var:
            continue
        for opt in field.findall('{%s}option' % NS_XDATA):
            val = opt.find('{%s}value' % NS_XDATA)
            if val is not None and val.text:
                out.append(val.text.strip())
        for val in field.findall('{%s}value' % NS_XDATA):
            if val.text:
                out.append(val.text.strip())
    return out


def error_extension(err):
    """Local name of an application-specific error child (e.g. no-valid-streams)."""
    for child in err.xml:
        tag = child.tag
        if tag.startswith('{') and not tag.startswith(
                '{urn:ietf:params:xml:ns:xmpp-stanzas}'):
            return tag.split('}', 1)[1]
    return None


def method_label(ns):
    return METHOD_NAME.get(ns, ns)


# ---------------------------------------------------------------------- HTTP (OOB, upload)
# Stanza classes of our own: slixmpp's xep_0363 imports aiohttp (not installed), and
# xep_0066's IQ handler answers before anything is fetched.
class OobQuery(ElementBase):
    """<query xmlns='jabber:iq:oob'><url/><desc/></query> (XEP-0066 iq)."""
    name = 'query'
    namespace = NS_IQ_OOB
    plugin_attrib = 'peer_oob_query'
    interfaces = {'url', 'desc', 'sid'}
    sub_interfaces = {'url', 'desc'}


class OobX(ElementBase):
    """<x xmlns='jabber:x:oob'><url/><desc/></x> (XEP-0066 in a message)."""
    name = 'x'
    namespace = NS_X_OOB
    plugin_attrib = 'peer_x_oob'
    interfaces = {'url', 'desc'}
    sub_interfaces = {'url', 'desc'}


class UploadRequest(ElementBase):
    """<request xmlns='urn:xmpp:http:upload:0' filename size content-type/>."""
    name = 'request'
    namespace = NS_UPLOAD
    plugin_attrib = 'peer_upload_request'
    interfaces = {'filename', 'size', 'content-type'}


register_stanza_plugin(Iq, OobQuery)
register_stanza_plugin(Iq, UploadRequest)
register_stanza_plugin(Message, OobX)


class UrlRefused(Exception):
    """A URL this peer will not connect to (scheme, or a host that is not loopback)."""


class FetchError(Exception):
    """An HTTP transfer that failed (status, connection, short body)."""


def is_loopback_url_host(host):
    """Hosts an http(s) URL may name: localhost, *.localhost, 127.0.0.0/8, ::1."""
    if not host:
        return False
    host = host.strip().rstrip('.').lower()
    if host == 'localhost' or host.endswith('.localhost'):
        return True
    return is_loopback_host(host)


def loopback_addrs(host):
    """Addresses to connect to for a loopback URL host, without any DNS lookup.

    localhost and *.localhost are loopback by definition (RFC 6761), so they are mapped
    to 127.0.0.1 then ::1 here rather than resolved (no resolver is ever asked).
    """
    host = host.strip().rstrip('.').lower()
    if host == 'localhost' or host.endswith('.localhost'):
        return ['127.0.0.1', '::1']
    return [host]


def check_url(url):
    """(scheme, host, port, path?query) of an http(s) URL to a loopback host, else UrlRefused."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused('malformed URL: %s' % exc)
    scheme = parts.scheme.lower()
    if scheme not in ('http', 'https'):
        raise UrlRefused('only http(s) URLs are fetched, not %r' % (scheme or url))
    host = parts.hostname
    if not host:
        raise UrlRefused('URL without a host')
    if not is_loopback_url_host(host):
        raise UrlRefused('host %s is not loopback (this peer connects to loopback only)'
                         % host)
    if parts.username or parts.password:
        raise UrlRefused('URL with user info')
    if port is None:
        port = 443 if scheme == 'https' else 80
    target = parts.path or '/'
    if parts.query:
        target += '?' + parts.query
    return scheme, host, port, target


class _LoopbackHTTPConnection(http.client.HTTPConnection):
    """Connects to the loopback address(es) of self.host; Host header and SNI keep the
    URL's name."""

    def connect(self):
        last = None
        for addr in loopback_addrs(self.host):
            try:
                self.sock = socket.create_connection((addr, self.port), self.timeout)
            except OSError as exc:
                last = exc
                continue
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return
        raise last or OSError('no address for %s' % self.host)


class _LoopbackHTTPSConnection(http.client.HTTPSConnection, _LoopbackHTTPConnection):
    """HTTPSConnection.connect() calls super().connect(), i.e. the loopback connect
    above, then wraps the socket with server_hostname = the URL's host."""


def http_connection(scheme, host, port, ca_file):
    if scheme == 'https':
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file \
            else ssl.create_default_context()
        return _LoopbackHTTPSConnection(host, port, timeout=HTTP_TIMEOUT, context=ctx,
                                        blocksize=READ_CHUNK)
    return _LoopbackHTTPConnection(host, port, timeout=HTTP_TIMEOUT, blocksize=READ_CHUNK)


def http_put(url, path, size, headers, ca_file):
    """PUT the file at `path` (XEP-0363); returns the HTTP status (2xx) or FetchError."""
    scheme, host, port, target = check_url(url)
    conn = http_connection(scheme, host, port, ca_file)
    try:
        hdrs = {'Content-Length': str(size), 'Content-Type': 'application/octet-stream',
                'User-Agent': HTTP_USER_AGENT}
        hdrs.update(headers)
        with open(path, 'rb') as fh:
            conn.request('PUT', target, body=fh, headers=hdrs)
        resp = conn.getresponse()
        body = resp.read(2000)
        if not 200 <= resp.status < 300:
            raise FetchError('PUT answered HTTP %d %s: %s' % (
                resp.status, resp.reason, body.decode('utf-8', 'replace').strip()[:200]))
        return resp.status
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError('PUT failed: %s: %s' % (type(exc).__name__, exc))
    finally:
        conn.close()


def url_file_name(url):
    """The file name a URL names: last path segment, percent-decoded, basename only."""
    path = urllib.parse.urlsplit(url).path
    return safe_name(urllib.parse.unquote(path.rsplit('/', 1)[-1]))


def http_fetch(url, directory, ca_file, parts=None):
    """GET `url` into DIR/.<name>.<token>.part, then rename to DIR/<name>.

    Follows up to 5 redirects (each target must pass check_url too). Raises UrlRefused
    for a URL it will not connect to and FetchError for a failed download (the .part is
    removed). `parts` (a set) holds the .part path while it exists.
    """
    name = url_file_name(url)
    current = url
    for _hop in range(HTTP_MAX_REDIRECTS + 1):
        scheme, host, port, target = check_url(current)
        conn = http_connection(scheme, host, port, ca_file)
        try:
            try:
                conn.request('GET', target, headers={'User-Agent': HTTP_USER_AGENT,
                                                     'Accept-Encoding': 'identity'})
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise FetchError('GET failed: %s: %s' % (type(exc).__name__, exc))
            location = resp.getheader('Location')
            if resp.status in (301, 302, 303, 307, 308) and location:
                current = urllib.parse.urljoin(current, location)
                continue
            if resp.status != 200:
                raise FetchError('GET answered HTTP %d %s' % (resp.status, resp.reason))
            length = resp.getheader('Content-Length')
            expected = int(length) if length and length.strip().isdigit() else None
            part = os.path.join(directory, '.%s.%s.part' % (name, secrets.token_hex(4)))
            if parts is not None:
                parts.add(part)
            sha = hashlib.sha256()
            got = 0
            try:
                with open(part, 'wb') as fh:
                    while True:
                        try:
                            data = resp.read(READ_CHUNK)
                        except http.client.IncompleteRead as exc:
                            got += len(exc.partial)
                            raise FetchError('body ended after %d bytes (incomplete read)'
                                             % got)
                        except (OSError, http.client.HTTPException) as exc:
                            raise FetchError('reading the body failed after %d bytes: '
                                             '%s: %s' % (got, type(exc).__name__, exc))
                        if not data:
                            break
                        fh.write(data)
                        sha.update(data)
                        got += len(data)
                if expected is not None and got != expected:
                    raise FetchError('body ended after %d of the %d bytes of Content-Length'
                                     % (got, expected))
                path = unique_path(directory, name)
                os.replace(part, path)
            except BaseException:
                try:
                    os.unlink(part)
                except OSError:
                    pass
                raise
            finally:
                if parts is not None:
                    parts.discard(part)
            return {'name': os.path.basename(path), 'path': path, 'size': got,
                    'sha256': sha.hexdigest()}
        finally:
            conn.close()
    raise FetchError('more than %d redirects' % HTTP_MAX_REDIRECTS)


def run_in_thread(loop, fn, *args):
    """Runs fn(*args) in a daemon thread; returns an asyncio future for its result.

    Not the loop's default executor: its threads are joined at interpreter exit, so a
    hanging HTTP transfer would keep the process alive after a timeout.
    """
    fut = loop.create_future()

    def settle(ok, value):
        if fut.done():
            return
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)

    def runner():
        try:
            result = (True, fn(*args))
        except BaseException as exc:  # pylint: disable=broad-except
            result = (False, exc)
        try:
            loop.call_soon_threadsafe(settle, *result)
        except RuntimeError:
            pass    # the loop is closed: nobody waits any more

    threading.Thread(target=runner, name='http-%s' % fn.__name__, daemon=True).start()
    return fut


class OobFileServer:
    """A one-file HTTP server on 127.0.0.1 for `send-oob --file`.

    Serves GET and HEAD of /<random token>/<url-quoted name> with Content-Length, honours
    `Range: bytes=N-` / `bytes=N-M` (206 + Content-Range, 416 if N >= size) and answers
    404 to any other path. bytes_served counts the body bytes written by GETs.
    """

    def __init__(self, path):
        self.file = path
        self.size = os.path.getsize(path)
        self.name = os.path.basename(path)
        self.token = secrets.token_urlsafe(16)
        self.bytes_served = 0
        self.requests = 0
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = 'skiff-tests-oob/1'
            sys_version = ''

            def log_message(self, fmt, *args):  # noqa: N802 - stdlib name
                log.info('oob http: ' + fmt, *args)

            def do_HEAD(self):  # noqa: N802
                server.handle(self, body=False)

            def do_GET(self):  # noqa: N802
                server.handle(self, body=True)

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = 'http://127.0.0.1:%d/%s/%s' % (
            self.port, self.token, urllib.parse.quote(self.name, safe=''))
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       name='oob-http', daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, req, body):
        with self.lock:
            self.requests += 1
        path = urllib.parse.unquote(urllib.parse.urlsplit(req.path).path)
        rng = req.headers.get('Range')
        fields = {'method': req.command, 'path': req.path, 'range': rng}
        if path != '/%s/%s' % (self.token, self.name):
            req.send_error(404)
            emit('http_request', status=404, bytes=0, **fields)
            return
        start, end, status = 0, self.size - 1, 200
        m = re.fullmatch(r'\s*bytes=(\d+)-(\d*)\s*', rng or '')
        if m:
            start = int(m.group(1))
            if m.group(2):
                end = min(int(m.group(2)), self.size - 1)
            if start >= self.size or start > end:
                req.send_response(416)
                req.send_header('Content-Range', 'bytes */%d' % self.size)
                req.send_header('Content-Length', '0')
                req.end_headers()
                emit('http_request', status=416, bytes=0, **fields)
                return
            status = 206
        length = end - start + 1 if self.size else 0
        req.send_response(status)
        req.send_header('Content-Type', 'application/octet-stream')
        req.send_header('Content-Length', str(length))
        req.send_header('Accept-Ranges', 'bytes')
        if status == 206:
            req.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, self.size))
        req.end_headers()
        sent = 0
        if body:
            try:
                with open(self.file, 'rb') as fh:
                    fh.seek(start)
                    while sent < length:
                        data = fh.read(min(READ_CHUNK, length - sent))
                        if not data:
                            break
                        req.wfile.write(data)
                        sent += len(data)
                        with self.lock:
                            self.bytes_served += len(data)
            except OSError as exc:      # the client went away
                log.info('oob http: body aborted after %d bytes: %s', sent, exc)
        emit('http_request', status=status, bytes=sent, **fields)


async def socks5_connect(host, port, dest):
    """SOCKS5 CONNECT (no auth) to a streamhost with DST.ADDR = dest (domain), port 0.

    Greeting and CONNECT are written separately, each after the previous reply
    (Prosody's proxy65 needs that).
    """
    reader, writer = await asyncio.open_connection(host, port)
    try:
        sock = writer.get_extra_info('socket')
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(b'\x05\x01\x00')
        await writer.drain()
        reply = await reader.readexactly(2)
        if reply != b'\x05\x00':
            raise ConnectionError('SOCKS5 method refused: %s' % reply.hex())
        d = dest.encode('ascii')
        writer.write(b'\x05\x01\x00\x03' + bytes([len(d)]) + d + b'\x00\x00')
        await writer.drain()
        head = await reader.readexactly(4)
        if head[0] != 5:
            raise ConnectionError('not a SOCKS5 reply: %s' % head.hex())
        if head[1] != 0:
            raise ConnectionError('SOCKS5 CONNECT failed, reply code %d' % head[1])
        atyp = head[3]
        if atyp == 1:
            await reader.readexactly(4 + 2)
        elif atyp == 4:
            await reader.readexactly(16 + 2)
        elif atyp == 3:
            n = (await reader.readexactly(1))[0]
            await reader.readexactly(n + 2)
        else:
            raise ConnectionError('SOCKS5 reply with unknown ATYP %d' % atyp)
        return reader, writer
    except BaseException:
        writer.close()
        raise


class Incoming:
    """One accepted SI offer on the receiving side."""

    def __init__(self, peer, sid, name, size, md5, method, directory, offset, length):
        self.peer = peer
        self.sid = sid
        self.offered_name = name
        self.name = safe_name(name)
        self.size = size
        self.md5_offered = (md5 or '').lower() or None
        self.method = method            # namespace
        self.offset = offset
        self.expected = length
        self.path = unique_path(directory, self.name)
        self.part = os.path.join(directory, '.%s.%s.part' % (self.name, sid[:16]))
        self.fh = open(self.part, 'wb')
        self.received = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.started = time.monotonic()
        self.done = False
        self.streamhost = None

    def write(self, data):
        if self.done:
            return
        self.fh.write(data)
        self.received += len(data)
        self.sha256.update(data)
        self.md5.update(data)

    def abort(self):
        self.done = True
        try:
            self.fh.close()
        finally:
            try:
                os.unlink(self.part)
            except OSError:
                pass


class Peer(ClientXMPP):

    def __init__(self, args):
        jid = JID(args.jid)
        if args.resource:
            jid = JID('%s/%s' % (jid.bare, args.resource))
        super().__init__(jid, args.password)
        self.args = args
        self.loop_ = asyncio.get_event_loop()
        self.session_ready = self.loop_.create_future()
        self.incoming = {}          # (sid, peer) -> Incoming
        self.finished = 0           # completed (or rejected with --reject) offers
        self.all_done = self.loop_.create_future()
        # Both futures may fail while nobody awaits them: mark exceptions retrieved.
        for fut in (self.session_ready, self.all_done):
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())

        # ClientXMPP registered feature_mechanisms already (a pconfig passed to
        # register_plugin now would be ignored): change its config in place.
        mech_config = self['feature_mechanisms'].config
        if args.plaintext:
            mech_config['unencrypted_plain'] = True
        else:
            # No authentication at all unless the stream is encrypted (slixmpp would
            # otherwise do SCRAM in the clear, and it never enforces STARTTLS).
            for key in ('unencrypted_plain', 'unencrypted_scram', 'unencrypted_digest',
                        'unencrypted_cram'):
                mech_config[key] = False
            self.ca_certs = args.ca_file

        for plugin in ('xep_0030', 'xep_0004', 'xep_0020', 'xep_0047',
                       'xep_0065', 'xep_0095', 'xep_0096', 'xep_0199'):
            self.register_plugin(plugin)

        # --- slixmpp bug workarounds -------------------------------------------------
        # XEP-0095's 'SI Request' handler is an async function registered with a plain
        # Callback: the coroutine is created and never awaited, so offers are dropped
        # without an answer. Re-register as a CoroutineCallback around our own logic,
        # which still calls slixmpp's _handle_request for validation and bookkeeping.
        self.remove_handler('SI Request')
        self.register_handler(CoroutineCallback(
            'SI Request (peer)', StanzaPath('iq@type=set/si'), self._on_si_request))
        # XEP-0065 target side: slixmpp connects to every streamhost at once, leaves the
        # unused connections open and reports data without a sid. We try the streamhosts
        # in order ourselves (unless --s5b-native, which wraps slixmpp's own handler).
        self.remove_handler('Socks5 Bytestreams')
        self.register_handler(CoroutineCallback(
            'Socks5 Bytestreams (peer)', StanzaPath('iq@type=set/socks/streamhost'),
            self._on_streamhost))

        if args.command == 'receive':
            ibb = self['xep_0047']
            ibb.max_block_size = args.ibb_max_block
            if args.ibb_allow_retry:
                # slixmpp consumes the sid's pre-authorisation before it checks the
                # block size, so after its <resource-constraint/> a retry with a smaller
                # block-size on the same sid gets <not-acceptable/>. Check size first.
                self.remove_handler('IBB Open')
                self.register_handler(CoroutineCallback(
                    'IBB Open (peer)', StanzaPath('iq@type=set/ibb_open'),
                    self._on_ibb_open))

        self.http_parts = set()     # .part files of downloads in progress
        self.http_tasks = set()
        if args.command == 'receive-oob':
            # Our own handler: slixmpp's xep_0066 (not loaded) would answer before
            # fetching. The feature is added once the JID is bound, as xep_0066 does.
            self.register_handler(CoroutineCallback(
                'OOB IQ (peer)', StanzaPath('iq@type=set/peer_oob_query'),
                self._on_oob_iq))
            self.add_event_handler('session_bind', self._on_bind_oob)
        if args.command == 'receive-link':
            self.add_event_handler('message', self._on_message)

        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler('failed_auth', self._on_failed_auth)
        self.add_event_handler('failed_all_auth', self._on_failed_all_auth)
        self.add_event_handler('stream_negotiated', self._on_stream_negotiated)
        self.add_event_handler('connection_failed', self._on_connection_failed)
        self.add_event_handler('disconnected', self._on_disconnected)
        self.add_event_handler('stream_error', self._on_stream_error)
        self.add_event_handler('ssl_invalid_chain', self._on_invalid_chain)
        self.add_event_handler('presence_available', self._on_presence)
        self.add_event_handler('presence_unavailable', self._on_presence)
        self.add_event_handler('ibb_stream_start', self._on_ibb_start)
        self.add_event_handler('ibb_stream_data', self._on_ibb_data)
        self.add_event_handler('ibb_stream_end', self._on_ibb_end)

    # ------------------------------------------------------------------ session
    def _fail_session(self, error):
        if not self.session_ready.done():
            self.session_ready.set_exception(PeerFailure(error, EXIT_CONNECT))

    async def _on_session_start(self, _event):
        if not self.args.plaintext and 'starttls' not in self.features:
            self._fail_session('stream is not encrypted (no STARTTLS)')
            return
        try:
            await self.get_roster(timeout=CONNECT_TIMEOUT)
        except (IqError, IqTimeout) as exc:
            self._fail_session('roster fetch failed: %s' % exc)
            return
        self.send_presence()
        if not self.session_ready.done():
            self.session_ready.set_result(True)
            emit('online', jid=self.boundjid.full)

    def _on_failed_auth(self, _event):
        self._fail_session('authentication failed')

    def _on_failed_all_auth(self, _event):
        self._fail_session('no usable authentication mechanism (no TLS on this server? '
                           'then use --plaintext; or the server requires TLS)')

    def _on_stream_negotiated(self, _event):
        if not self.authenticated:
            # E.g. --plaintext against a server that requires STARTTLS.
            self._fail_session('stream features negotiated without signing in '
                               '(server requires STARTTLS?)')

    def _on_connection_failed(self, event):
        self._fail_session('connection failed: %s' % (event,))

    def _on_stream_error(self, event):
        self._fail_session('stream error: %s' % event['condition'])

    def _on_invalid_chain(self, event):
        self._fail_session('TLS certificate not trusted: %s' % (event,))
        self.abort()

    def _on_disconnected(self, reason):
        self._fail_session('disconnected: %s' % (reason,))
        if not self.all_done.done() and self.session_ready.done():
            self.all_done.set_exception(PeerFailure('disconnected from server: %s' % (reason,)))

    def _on_presence(self, pres):
        emit('presence', **{'from': pres['from'].full, 'type': pres['type'],
                            'show': pres['show'] or None, 'status': pres['status'] or None})

    # ------------------------------------------------------------------ receive: SI
    def _finish_one(self):
        self.finished += 1
        if self.finished >= self.args.count and not self.all_done.done():
            self.all_done.set_result(True)

    def _fail_incoming(self, inc, error, **fields):
        if inc is not None:
            if inc.done:
                return
            inc.abort()
            self.incoming.pop((inc.sid, str(inc.peer)), None)
            fields.setdefault('sid', inc.sid)
            fields.setdefault('name', inc.name)
            fields.setdefault('method', method_label(inc.method))
            fields.setdefault('received', inc.received)
        emit('failed', error=error, **fields)
        if not self.args.keep_going and not self.all_done.done():
            self.all_done.set_exception(PeerFailure(error, already_reported=True))

    def _complete_incoming(self, inc):
        if inc.done:
            return
        if inc.received != inc.expected:
            self._fail_incoming(inc, 'stream ended after %d of %d bytes'
                                % (inc.received, inc.expected))
            return
        inc.done = True
        inc.fh.close()
        os.replace(inc.part, inc.path)
        self.incoming.pop((inc.sid, str(inc.peer)), None)
        md5 = inc.md5.hexdigest()
        whole = inc.offset == 0 and inc.expected == inc.size
        fields = {
            'from': inc.peer.full, 'sid': inc.sid, 'name': inc.name, 'path': inc.path,
            'size': inc.received, 'sha256': inc.sha256.hexdigest(), 'md5': md5,
            'md5_ok': (md5 == inc.md5_offered) if (whole and inc.md5_offered) else None,
            'method': method_label(inc.method),
            'seconds': round(time.monotonic() - inc.started, 3),
        }
        if inc.offset:
            fields['offset'] = inc.offset
        if inc.streamhost:
            fields['streamhost'] = inc.streamhost
        if getattr(inc, 'ibb_block_size', None):
            fields['block_size'] = inc.ibb_block_size
        emit('completed', **fields)
        self._finish_one()

    async def _on_si_request(self, iq):
        args = self.args
        if args.command != 'receive':
            raise XMPPError('service-unavailable', etype='cancel')
        si = iq['si']
        sid = si['id']
        profile = si['profile']
        peer = iq['from']
        file_el = si.xml.find('{%s}file' % NS_FT)
        methods = form_values(si.xml, 'stream-method')

        if profile != NS_FT or not sid:
            emit('refused', **{'from': peer.full, 'sid': sid, 'reason': 'bad-profile or no sid',
                               'profile': profile})
            # slixmpp answers bad-profile / bad-request itself.
            await self['xep_0095']._handle_request(iq)
            return
        if file_el is None or not file_el.get('name') or \
                not (file_el.get('size') or '').isdigit():
            emit('refused', **{'from': peer.full, 'sid': sid,
                               'reason': 'file element without name/size'})
            raise XMPPError('bad-request', text='file element needs name and size',
                            etype='modify')
        name = file_el.get('name')
        size = int(file_el.get('size'))
        ranged = file_el.find('{%s}range' % NS_FT) is not None
        desc_el = file_el.find('{%s}desc' % NS_FT)
        emit('offer', **{
            'from': peer.full, 'name': name, 'size': size, 'sid': sid,
            'methods': [method_label(m) for m in methods],
            'hash': file_el.get('hash'), 'date': file_el.get('date'),
            'desc': desc_el.text if desc_el is not None else None,
            'range': ranged, 'mime_type': si.xml.get('mime-type'),
        })

        if args.reject:
            # slixmpp's own path: _handle_request stores the offer, decline() answers
            # <forbidden/> with the text 'Offer declined'.
            await self['xep_0095']._handle_request(iq)
            await self['xep_0095'].decline(peer, sid, ifrom=iq['to'])
            emit('rejected', **{'from': peer.full, 'sid': sid, 'name': name})
            self._finish_one()
            return

        if args.method == 'any':
            prefs = [NS_S5B, NS_IBB]
        else:
            prefs = [METHOD_NS[args.method]]
        chosen = next((m for m in prefs if m in methods), None)
        if chosen is None:
            emit('refused', **{'from': peer.full, 'sid': sid, 'reason': 'no-valid-streams',
                               'methods': [method_label(m) for m in methods]})
            raise XMPPError('bad-request', extension='no-valid-streams',
                            extension_ns=NS_SI, etype='cancel')

        # slixmpp validates and stores the pending offer (it would pick IBB over
        # bytestreams: its method order sorts ascending). Override its choice.
        await self['xep_0095']._handle_request(iq)
        pending = await self['xep_0095'].api['get_pending'](iq['to'], sid, peer)
        if pending is None:
            raise XMPPError('internal-server-error', text='offer not stored')
        pending['method'] = chosen

        offset, length = 0, size
        payload = None
        if args.range_offset is not None or args.range_length is not None:
            if not ranged:
                log.warning('--range-* given but the offer has no <range/>: not asking')
            else:
                offset = args.range_offset or 0
                offset = min(offset, size)
                length = size - offset
                if args.range_length is not None:
                    length = min(args.range_length, length)
                payload = File()
                if args.range_offset is not None:
                    payload['range']['offset'] = offset
                if args.range_length is not None:
                    payload['range']['length'] = length

        try:
            directory = os.path.abspath(args.dir)
            os.makedirs(directory, exist_ok=True)
            inc = Incoming(peer, sid, name, size, file_el.get('hash'), chosen, directory,
                           offset, length)
        except OSError as exc:
            emit('failed', error='cannot create file: %s' % exc, sid=sid)
            raise XMPPError('internal-server-error', text='cannot store the file')
        self.incoming[(sid, peer.full)] = inc

        handler = None
        if chosen == NS_S5B and args.s5b_native:
            handler = lambda conn, inc=inc: self._native_s5b_stream(inc, conn)
        await self['xep_0095'].accept(peer, sid, payload=payload, ifrom=iq['to'],
                                      stream_handler=handler)
        fields = {'from': peer.full, 'sid': sid, 'name': inc.name,
                  'method': method_label(chosen)}
        if payload is not None:
            fields.update(offset=offset, length=length)
        emit('accepted', **fields)

    def _lookup(self, sid, peer):
        return self.incoming.get((sid, JID(peer).full))

    # ------------------------------------------------------------------ receive: IBB
    async def _on_ibb_open(self, iq):
        ibb = self['xep_0047']
        size = iq['ibb_open']['block_size'] or ibb.block_size
        if size > ibb.max_block_size:
            emit('ibb_refused', sid=iq['ibb_open']['sid'], block_size=size,
                 max_block_size=ibb.max_block_size)
            raise XMPPError('resource-constraint', etype='modify')
        await ibb._handle_open_request(iq)

    def _on_ibb_start(self, stream):
        inc = self._lookup(stream.sid, stream.peer_jid)
        if inc is None or inc.method != NS_IBB:
            return
        inc.ibb_block_size = stream.block_size
        log.info('IBB stream %s open, block-size %s', stream.sid, stream.block_size)

    def _on_ibb_data(self, stream):
        inc = self._lookup(stream.sid, stream.peer_jid)
        if inc is None or inc.method != NS_IBB:
            return
        while not stream.recv_queue.empty():
            inc.write(stream.recv_queue.get_nowait())
        if inc.received > inc.expected:
            self._fail_incoming(inc, 'received more than %d bytes' % inc.expected)
            stream.close()

    def _on_ibb_end(self, stream):
        inc = self._lookup(stream.sid, stream.peer_jid)
        if inc is None or inc.method != NS_IBB:
            return
        while not stream.recv_queue.empty():
            inc.write(stream.recv_queue.get_nowait())
        self._complete_incoming(inc)

    # ------------------------------------------------------------------ receive: S5B
    async def _on_streamhost(self, iq):
        sid = iq['socks']['sid']
        requester = iq['from']
        target = iq['to']
        inc = self._lookup(sid, requester) if sid else None
        hosts = []
        for sh in iq['socks']['streamhosts']:
            port = sh['port']
            hosts.append((sh['jid'].full, sh['host'], int(port) if str(port).isdigit() else port))
        emit('streamhosts', sid=sid, hosts=[{'jid': j, 'host': h, 'port': p}
                                            for j, h, p in hosts])

        if self.args.s5b_native:
            # Drop non-loopback candidates (this peer never connects elsewhere), then
            # let slixmpp's own handler do the rest (parallel connects, streamhost-used).
            for sh in list(iq['socks']['streamhosts']):
                if not is_loopback_host(sh['host']):
                    iq['socks'].xml.remove(sh.xml)
            await self['xep_0065']._handle_streamhost(iq)
            return

        if not sid:
            raise XMPPError('bad-request', etype='modify')
        if inc is None or inc.method != NS_S5B:
            raise XMPPError('not-acceptable', etype='modify')

        dest = hashlib.sha1((sid + requester.full + target.full).encode('utf-8')).hexdigest()
        conn = None
        used = None
        for jid, host, port in hosts:
            if not is_loopback_host(host):
                emit('streamhost_skipped', sid=sid, jid=jid, host=host, port=port,
                     reason='not loopback')
                continue
            try:
                conn = await asyncio.wait_for(socks5_connect(host, int(port), dest),
                                              S5B_CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    ConnectionError, ValueError) as exc:
                emit('streamhost_failed', sid=sid, jid=jid, host=host, port=port,
                     error=str(exc) or type(exc).__name__)
                continue
            used = (jid, host, port)
            break
        if conn is None:
            self._fail_incoming(inc, 'no streamhost worked', sid=sid)
            raise XMPPError('item-not-found', etype='cancel')

        reader, writer = conn
        inc.streamhost = used[0]
        reply = iq.reply()
        reply['socks']['sid'] = sid
        reply['socks']['streamhost_used']['jid'] = used[0]
        reply.send()
        emit('streamhost_used', sid=sid, jid=used[0], host=used[1], port=used[2])
        try:
            while True:
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                inc.write(data)
                if inc.received > inc.expected:
                    self._fail_incoming(inc, 'received more than %d bytes' % inc.expected)
                    break
        except OSError as exc:
            self._fail_incoming(inc, 'SOCKS5 read failed: %s' % exc)
        finally:
            writer.close()
        self._complete_incoming(inc)

    def _native_s5b_stream(self, inc, conn):
        """--s5b-native: slixmpp's handler chose `conn` (a Socks5Protocol).

        slixmpp's 'socks5_data'/'socks5_closed' events carry no sid and no connection;
        redirect this connection's events to this transfer instead.
        """
        try:
            peer = conn.transport.get_extra_info('peername')
            inc.streamhost = '%s:%s' % (peer[0], peer[1])
        except Exception:  # pylint: disable=broad-except
            pass
        emit('streamhost_used', sid=inc.sid, peername=inc.streamhost, native=True)

        def on_event(name, data, inc=inc):
            if name == 'socks5_data':
                inc.write(data)
            elif name == 'socks5_closed':
                if data is not None:
                    self._fail_incoming(inc, 'SOCKS5 connection lost: %s' % data)
                else:
                    self._complete_incoming(inc)
        conn.event = on_event

    # ------------------------------------------------------------------ send
    async def do_send(self):
        args = self.args
        path = args.file
        to = JID(args.to)
        st = os.stat(path)
        size = st.st_size
        name = os.path.basename(path)
        date = dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)
        md5 = await self.loop_.run_in_executor(None, file_md5, path)
        deadline = time.monotonic() + args.timeout

        def remaining():
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError()
            return left

        if args.method == 'ibb':
            methods = [NS_IBB]
        elif args.method == 's5b':
            methods = [NS_S5B]
        else:
            methods = [NS_S5B, NS_IBB] if args.proxy else [NS_IBB]

        proxy = None
        if NS_S5B in methods:
            proxy = await self.query_proxy(JID(args.proxy), remaining())

        sid = args.sid or uuid.uuid4().hex
        emit('offering', to=to.full, sid=sid, name=name, size=size, md5=md5,
             date=format_datetime(date), methods=[method_label(m) for m in methods])
        try:
            # Workaround: XEP_0095.offer() hands the method strings to
            # add_field(options=...), which wants dicts: pass [{'value': ns}].
            result = await self['xep_0096'].request_file_transfer(
                to, sid=sid, name=name, size=size, hash=md5, date=date,
                allow_ranged=True, mime_type=args.mime_type,
                methods=[{'value': m} for m in methods], timeout=remaining())
        except IqError as exc:
            err = exc.iq['error']
            raise PeerFailure('offer rejected', condition=err['condition'],
                              text=err['text'] or None, type=err['type'] or None,
                              extension=error_extension(err), sid=sid)
        si_xml = result['si'].xml
        chosen = form_values(si_xml, 'stream-method')
        if len(chosen) != 1 or chosen[0] not in methods:
            raise PeerFailure('accept names no offered method', chosen=chosen, sid=sid)
        chosen = chosen[0]
        offset, length = 0, size
        file_el = si_xml.find('{%s}file' % NS_FT)
        range_el = file_el.find('{%s}range' % NS_FT) if file_el is not None else None
        if range_el is not None:
            try:
                offset = int(range_el.get('offset') or 0)
                length = int(range_el.get('length')) if range_el.get('length') \
                    else size - offset
            except ValueError:
                raise PeerFailure('bad range in accept', sid=sid)
            if offset < 0 or length < 0 or offset + length > size:
                raise PeerFailure('range outside the file', offset=offset, length=length,
                                  sid=sid)
        emit('accepted', sid=sid, method=method_label(chosen), offset=offset, length=length)
        started = time.monotonic()
        if chosen == NS_IBB:
            sha256 = await self.send_ibb(to, sid, path, offset, length, remaining)
        else:
            sha256 = await self.send_s5b(to, sid, path, offset, length, proxy, remaining)
        fields = {'to': to.full, 'sid': sid, 'name': name, 'size': length,
                  'sha256': sha256, 'method': method_label(chosen),
                  'seconds': round(time.monotonic() - started, 3)}
        if offset:
            fields['offset'] = offset
        emit('completed', **fields)
        return EXIT_OK

    async def query_proxy(self, proxy_jid, timeout):
        try:
            res = await self['xep_0065'].get_network_address(proxy_jid, timeout=timeout)
        except IqError as exc:
            raise PeerFailure('proxy query failed', condition=exc.iq['error']['condition'],
                              proxy=proxy_jid.full)
        sh = res['socks']['streamhost']
        host, port = sh['host'], sh['port']
        jid = sh['jid'] if sh['jid'] else proxy_jid
        if not host or not str(port).isdigit():
            raise PeerFailure('proxy answered without host/port', proxy=proxy_jid.full)
        if not is_loopback_host(host):
            raise PeerFailure('proxy address is not loopback; refusing', host=host,
                              port=port, proxy=jid.full)
        emit('proxy', jid=jid.full, host=host, port=int(port))
        return jid, host, int(port)

    async def send_ibb(self, to, sid, path, offset, length, remaining):
        ibb = self['xep_0047']
        bs = self.args.block_size
        sha = hashlib.sha256()
        try:
            stream = await ibb.open_stream(to, block_size=bs, sid=sid, timeout=remaining())
        except IqError as exc:
            raise PeerFailure('IBB open refused', condition=exc.iq['error']['condition'],
                              sid=sid)
        try:
            with open(path, 'rb') as fh:
                fh.seek(offset)
                left = length
                while left > 0:
                    data = fh.read(min(bs, left))
                    if not data:
                        raise PeerFailure('file shrank while sending', sid=sid)
                    # One <data/> IQ at a time, waiting for each ack (slixmpp's way).
                    await stream.send(data, timeout=remaining())
                    sha.update(data)
                    left -= len(data)
        except IqError as exc:
            raise PeerFailure('IBB data refused', condition=exc.iq['error']['condition'],
                              sid=sid)
        except OSError as exc:
            raise PeerFailure('IBB stream closed by peer: %s' % (exc,), sid=sid)
        try:
            await stream.close(timeout=remaining())
        except IqError as exc:
            raise PeerFailure('IBB close refused', condition=exc.iq['error']['condition'],
                              sid=sid)
        return sha.hexdigest()

    async def send_s5b(self, to, sid, path, offset, length, proxy, remaining):
        s5b = self['xep_0065']
        pjid, host, port = proxy
        # slixmpp has no SOCKS5 server of its own: handshake() offers exactly the
        # proxies in _proxies, waits for <streamhost-used/>, connects to that proxy
        # and sends <activate/>. Preset _proxies so it skips its own discovery.
        # The port must be a string: StreamHost has no set_port(), an int crashes the
        # serializer in the send queue (the IQ is silently never sent).
        s5b._proxies = {pjid: (host, str(port))}
        closed = self.loop_.create_future()

        def on_closed(exc):
            if not closed.done():
                closed.set_result(exc)
        try:
            sock = await s5b.handshake(to, sid=sid, timeout=remaining())
        except IqError as exc:
            err = exc.iq['error']
            raise PeerFailure('bytestream refused', condition=err['condition'],
                              **{'from': exc.iq['from'].full, 'sid': sid})
        except OSError as exc:
            raise PeerFailure('cannot reach proxy: %s' % exc, sid=sid)
        if sock is None:
            raise PeerFailure('SOCKS5 handshake failed (unknown streamhost-used or '
                              'proxy connect error)', sid=sid)
        emit('activated', sid=sid, proxy=pjid.full)
        # Socks5Protocol reports through xmpp.event without a sid; route this
        # connection's events to us.
        orig_event = sock.event

        def event(name, data):
            if name == 'socks5_closed':
                on_closed(data)
            else:
                orig_event(name, data)
        sock.event = event
        transport = sock.transport
        raw = transport.get_extra_info('socket')
        if raw is not None:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=4 * 1024 * 1024)
        sha = hashlib.sha256()
        with open(path, 'rb') as fh:
            fh.seek(offset)
            left = length
            while left > 0:
                if transport.is_closing() or closed.done():
                    raise PeerFailure('SOCKS5 connection closed after %d of %d bytes'
                                      % (length - left, length), sid=sid)
                data = fh.read(min(READ_CHUNK, left))
                if not data:
                    raise PeerFailure('file shrank while sending', sid=sid)
                await asyncio.wait_for(asyncio.shield(sock.paused), remaining())
                transport.write(data)
                sha.update(data)
                left -= len(data)
        transport.close()   # flushes the buffer, then closes
        exc = await asyncio.wait_for(closed, remaining())
        if exc is not None:
            raise PeerFailure('SOCKS5 connection error: %s' % exc, sid=sid)
        s5b._sessions.pop(sid, None)
        return sha.hexdigest()

    # ------------------------------------------------------------------ HTTP helpers
    def _in_thread(self, fn, *args):
        return run_in_thread(self.loop_, fn, *args)

    def _fail_http(self, error, **fields):
        """A failed OOB offer or link: `failed`, then exit 1 unless --keep-going."""
        emit('failed', error=error, **fields)
        if not self.args.keep_going and not self.all_done.done():
            self.all_done.set_exception(PeerFailure(error, already_reported=True))

    def _cleanup_parts(self):
        for part in list(self.http_parts):
            try:
                os.unlink(part)
            except OSError:
                pass
        self.http_parts.clear()

    @staticmethod
    def _answer_error(iq, condition, code, text=None):
        """An error reply of type cancel, with the legacy code attribute."""
        reply = iq.reply()
        reply['error']['type'] = 'cancel'
        reply['error']['condition'] = condition
        reply['error']['code'] = str(code)
        if text:
            reply['error']['text'] = text
        reply.send()

    # ------------------------------------------------------------------ receive-oob
    def _on_bind_oob(self, _jid):
        self['xep_0030'].add_feature(NS_IQ_OOB)

    async def _on_oob_iq(self, iq):
        """XEP-0066 iq: fetch first, answer after (result = fetched, error = not)."""
        args = self.args
        peer = iq['from'].full
        query = iq['peer_oob_query']
        url = (query['url'] or '').strip()
        desc = query['desc'] or None
        emit('offer', **{'from': peer, 'url': url, 'desc': desc,
                         'sid': query['sid'] or None})
        if not url:
            self._fail_http('offer without a URL', condition='bad-request',
                            **{'from': peer})
            raise XMPPError('bad-request', text='no <url/> in the offer', etype='modify')
        if args.reject:
            self._answer_error(iq, 'not-acceptable', 406, 'Offer declined')
            emit('rejected', **{'from': peer, 'url': url, 'condition': 'not-acceptable'})
            self._finish_one()
            return
        if args.fail:
            self._answer_error(iq, 'item-not-found', 404, 'Pretending the fetch failed')
            emit('failure_sent', **{'from': peer, 'url': url, 'condition': 'item-not-found'})
            self._finish_one()
            return
        try:
            check_url(url)
        except UrlRefused as exc:
            self._answer_error(iq, 'not-acceptable', 406, str(exc))
            self._fail_http('refused URL: %s' % exc, condition='not-acceptable',
                            refused=True, **{'from': peer, 'url': url})
            return
        try:
            directory = os.path.abspath(args.dir)
            os.makedirs(directory, exist_ok=True)
            started = time.monotonic()
            got = await self._in_thread(http_fetch, url, directory, args.ca_file,
                                        self.http_parts)
        except (UrlRefused, FetchError, OSError) as exc:
            # UrlRefused here: a redirect to somewhere we do not go.
            self._answer_error(iq, 'item-not-found', 404, str(exc))
            self._fail_http('fetch failed: %s' % exc, condition='item-not-found',
                            **{'from': peer, 'url': url})
            return
        emit('received', **{'from': peer, 'url': url,
                            'seconds': round(time.monotonic() - started, 3)}, **got)
        iq.reply().send()
        self._finish_one()

    # ------------------------------------------------------------------ receive-link
    def _on_message(self, msg):
        if msg['type'] not in ('chat', 'normal'):
            return
        peer = msg['from'].full
        body = msg['body'] or None
        x = msg.xml.find('{%s}x' % NS_X_OOB)
        url = desc = None
        if x is not None:
            url = (x.findtext('{%s}url' % NS_X_OOB) or '').strip() or None
            desc = x.findtext('{%s}desc' % NS_X_OOB) or None
        elif self.args.body_links and body and re.fullmatch(r'https?://\S+', body.strip()):
            url = body.strip()
        if url is None:
            if body is not None:
                emit('message', **{'from': peer, 'type': msg['type'], 'body': body})
            return
        emit('link', **{'from': peer, 'url': url, 'desc': desc, 'body': body,
                        'oob': x is not None})
        task = self.loop_.create_task(self._fetch_link(peer, url))
        self.http_tasks.add(task)
        task.add_done_callback(self.http_tasks.discard)

    async def _fetch_link(self, peer, url):
        try:
            directory = os.path.abspath(self.args.dir)
            os.makedirs(directory, exist_ok=True)
            started = time.monotonic()
            got = await self._in_thread(http_fetch, url, directory, self.args.ca_file,
                                        self.http_parts)
        except UrlRefused as exc:
            self._fail_http('refused URL: %s' % exc, refused=True,
                            **{'from': peer, 'url': url})
            return
        except (FetchError, OSError) as exc:
            self._fail_http('fetch failed: %s' % exc, **{'from': peer, 'url': url})
            return
        emit('received', **{'from': peer, 'url': url,
                            'seconds': round(time.monotonic() - started, 3)}, **got)
        self._finish_one()

    # ------------------------------------------------------------------ send-oob
    async def do_send_oob(self):
        args = self.args
        to = JID(args.to)
        server = None
        if args.file:
            server = OobFileServer(args.file)
            server.start()
            url = server.url
        else:
            url = args.url
        try:
            iq = self.Iq()
            iq['type'] = 'set'
            iq['to'] = to
            iq['peer_oob_query']['url'] = url
            if args.desc:
                iq['peer_oob_query']['desc'] = args.desc
            # The receiver answers only once it has fetched the file: wait --timeout.
            answer = iq.send(timeout=args.timeout)
            emit('offered', to=to.full, url=url,
                 size=server.size if server else None)
            served = lambda: server.bytes_served if server else None  # noqa: E731
            try:
                await answer
            except IqError as exc:
                err = exc.iq['error']
                cond = err['condition']
                fields = {'url': url, 'condition': cond, 'text': err['text'] or None,
                          'type': err['type'] or None, 'bytes_served': served()}
                if cond == 'not-acceptable':
                    emit('rejected', **fields)
                    return EXIT_FAILED
                raise PeerFailure('offer failed', **fields)
            except IqTimeout:
                raise PeerFailure('no answer within %ss' % args.timeout, EXIT_TIMEOUT,
                                  url=url, bytes_served=served())
            emit('completed', to=to.full, url=url, bytes_served=served(),
                 requests=server.requests if server else None)
            return EXIT_OK
        finally:
            if server is not None:
                server.close()

    # ------------------------------------------------------------------ share (XEP-0363)
    async def find_upload_service(self, timeout):
        """(jid, max-file-size or None) of the first upload service of our domain."""
        domain = self.boundjid.domain
        candidates = [self.args.service] if self.args.service else None
        if candidates is None:
            candidates = [domain]
            try:
                items = await self['xep_0030'].get_items(jid=domain, local=False,
                                                          timeout=timeout())
                for item in items.xml.iter('{%s}item' % NS_DISCO_ITEMS):
                    jid = item.get('jid')
                    if jid and not item.get('node') and jid not in candidates:
                        candidates.append(jid)
            except IqError as exc:
                log.info('disco#items of %s failed: %s', domain, exc)
        for jid in candidates:
            try:
                info = await self['xep_0030'].get_info(jid=jid, local=False,
                                                       timeout=timeout())
            except IqError as exc:
                log.info('disco#info of %s failed: %s', jid, exc)
                continue
            query = info.xml.find('{%s}query' % NS_DISCO_INFO)
            if query is None:
                continue
            features = {f.get('var') for f in query.findall('{%s}feature' % NS_DISCO_INFO)}
            if NS_UPLOAD not in features:
                continue
            max_size = None
            for form in query.findall('{%s}x' % NS_XDATA):
                values = {}
                for field in form.findall('{%s}field' % NS_XDATA):
                    values[field.get('var')] = field.findtext('{%s}value' % NS_XDATA)
                if (values.get('FORM_TYPE') or '').strip() == NS_UPLOAD:
                    raw = (values.get('max-file-size') or '').strip()
                    if raw.isdigit():
                        max_size = int(raw)
            return jid, max_size
        raise PeerFailure('no HTTP upload service (%s) found' % NS_UPLOAD,
                          searched=candidates)

    async def do_share(self):
        args = self.args
        to = JID(args.to)
        path = args.file
        size = os.path.getsize(path)
        name = os.path.basename(path)
        deadline = time.monotonic() + args.timeout

        def remaining():
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError()
            return left

        service, max_size = await self.find_upload_service(remaining)
        emit('service', jid=service, max_file_size=max_size)
        if max_size is not None and size > max_size:
            raise PeerFailure('file too large for the upload service', size=size,
                              max_file_size=max_size, service=service)

        iq = self.Iq()
        iq['type'] = 'get'
        iq['to'] = service
        req = iq['peer_upload_request']
        req['filename'] = name
        req['size'] = str(size)
        req['content-type'] = 'application/octet-stream'
        try:
            answer = await iq.send(timeout=remaining())
        except IqError as exc:
            err = exc.iq['error']
            raise PeerFailure('slot request refused', condition=err['condition'],
                              text=err['text'] or None, type=err['type'] or None,
                              extension=error_extension(err), service=service)
        slot = answer.xml.find('{%s}slot' % NS_UPLOAD)
        put = slot.find('{%s}put' % NS_UPLOAD) if slot is not None else None
        get = slot.find('{%s}get' % NS_UPLOAD) if slot is not None else None
        put_url = put.get('url') if put is not None else None
        get_url = get.get('url') if get is not None else None
        if not put_url or not get_url:
            raise PeerFailure('slot without put/get URL', service=service)
        headers = {}
        for h in put.findall('{%s}header' % NS_UPLOAD):
            hname = (h.get('name') or '').strip()
            if hname.lower() in UPLOAD_HEADERS:
                # XEP-0363: strip newlines from header values.
                headers[hname] = re.sub(r'[\r\n]', '', h.text or '')
        emit('slot', put_url=put_url, get_url=get_url, headers=sorted(headers))
        for which, url in (('put', put_url), ('get', get_url)):
            try:
                check_url(url)
            except UrlRefused as exc:
                raise PeerFailure('refusing the %s URL: %s' % (which, exc), url=url)

        sha = await self._in_thread(file_sha256, path)
        try:
            status = await asyncio.wait_for(
                self._in_thread(http_put, put_url, path, size, headers, args.ca_file),
                remaining())
        except (FetchError, UrlRefused) as exc:
            raise PeerFailure(str(exc), put_url=put_url)
        emit('uploaded', url=get_url, put_url=put_url, size=size, sha256=sha,
             status=status)

        msg = self.make_message(mto=to, mbody=get_url, mtype='chat')
        if not args.bare:
            msg['peer_x_oob']['url'] = get_url
            if args.desc:
                msg['peer_x_oob']['desc'] = args.desc
        msg.send()
        emit('sent', to=to.full, url=get_url, oob=not args.bare)
        return EXIT_OK

    # ------------------------------------------------------------------ commands
    async def do_receive(self):
        await self.all_done
        return EXIT_OK

    async def do_online(self):
        if self.args.seconds is None:
            await self.loop_.create_future()   # until SIGTERM
        await asyncio.sleep(self.args.seconds)
        return EXIT_OK

    async def run_command(self):
        try:
            return await self._run_command()
        except asyncio.CancelledError:
            emit('stopped', reason='signal')
            return EXIT_OK if self.args.command == 'online' else EXIT_INTERRUPTED

    async def _run_command(self):
        args = self.args
        try:
            await asyncio.wait_for(asyncio.shield(self.session_ready), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            emit('failed', error='no session within %ds' % CONNECT_TIMEOUT)
            return EXIT_CONNECT
        except PeerFailure as exc:
            emit('failed', error=exc.error)
            return exc.code
        try:
            timeout = getattr(args, 'timeout', None)
            if args.command == 'send':
                coro = self.do_send()
            elif args.command in ('receive', 'receive-oob', 'receive-link'):
                coro = self.do_receive()
            elif args.command == 'share':
                coro = self.do_share()
            elif args.command == 'send-oob':
                coro = self.do_send_oob()
                # The IQ's own timeout (--timeout) comes first and names the URL.
                timeout = args.timeout + 10
            else:
                coro = self.do_online()
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            fields = {}
            if args.command in ('receive-oob', 'receive-link'):
                fields = {'finished': self.finished, 'count': args.count}
                self._cleanup_parts()
            if args.command == 'receive':
                fields = {'finished': self.finished, 'count': args.count}
                for inc in list(self.incoming.values()):
                    fields.setdefault('pending', []).append(
                        {'sid': inc.sid, 'name': inc.name, 'received': inc.received,
                         'expected': inc.expected})
                    inc.abort()
            emit('failed', error='timeout after %ss' % timeout, **fields)
            return EXIT_TIMEOUT
        except PeerFailure as exc:
            if not exc.fields.pop('already_reported', False):
                emit('failed', error=exc.error, **exc.fields)
            return exc.code
        except (IqTimeout,) as exc:
            emit('failed', error='no answer to an IQ in time')
            return EXIT_TIMEOUT
        except OSError as exc:
            emit('failed', error='%s: %s' % (type(exc).__name__, exc))
            return EXIT_FAILED


def file_digest(path, algorithm):
    """Hex digest of the file at ``path`` (``algorithm``: 'md5' or 'sha256')."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as fh:
        while True:
            block = fh.read(1024 * 1024)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def file_md5(path):
    return file_digest(path, 'md5')


def file_sha256(path):
    return file_digest(path, 'sha256')


def build_parser():
    p = argparse.ArgumentParser(
        prog='slixmpp_peer.py',
        description='slixmpp-based XMPP file-transfer test peer (JSON lines on stdout).')
    p.add_argument('--jid', required=True)
    p.add_argument('--password', required=True)
    p.add_argument('--server', required=True, type=parse_hostport,
                   help='HOST:PORT of the XMPP server (loopback only)')
    p.add_argument('--ca-file', help='PEM CA bundle to verify the server certificate '
                   '(required unless --plaintext)')
    p.add_argument('--resource', help='resource to bind (default: server-assigned)')
    p.add_argument('--plaintext', action='store_true',
                   help='no STARTTLS; allow PLAIN without encryption (test servers only)')
    p.add_argument('-v', '--verbose', action='count', default=0,
                   help='log to stderr (-v info, -vv debug with XML)')
    sub = p.add_subparsers(dest='command', required=True)

    s = sub.add_parser('send', help='offer and send one file')
    s.add_argument('--to', required=True, help='full JID of the receiver')
    s.add_argument('--file', required=True)
    s.add_argument('--method', choices=['ibb', 's5b', 'any'], default='any',
                   help='ibb: offer IBB only; s5b: offer bytestreams only (needs --proxy); '
                   'any (default): bytestreams then IBB when --proxy is given, else IBB')
    s.add_argument('--proxy', help='SOCKS5 proxy JID (e.g. proxy.localhost)')
    s.add_argument('--timeout', type=float, default=120.0)
    s.add_argument('--sid', help='SI id / bytestream sid (default: random hex)')
    s.add_argument('--mime-type', default=None,
                   help='mime-type attribute on <si/> (default: none, as slixmpp)')
    s.add_argument('--block-size', type=int, default=4096, help='IBB block size (4096)')

    r = sub.add_parser('receive', help='accept (or reject) SI file offers')
    r.add_argument('--dir', required=True)
    r.add_argument('--count', type=int, default=1)
    r.add_argument('--timeout', type=float, default=300.0)
    r.add_argument('--method', choices=['ibb', 's5b', 'any'], default='any',
                   help='any: bytestreams when offered, else IBB')
    r.add_argument('--reject', action='store_true', help='decline every offer (forbidden)')
    r.add_argument('--keep-going', action='store_true',
                   help='do not exit on a failed transfer; wait for --count successes')
    r.add_argument('--s5b-native', action='store_true',
                   help="use slixmpp's own SOCKS5 target handler (connects to all "
                   "streamhosts at once) instead of trying them in order")
    r.add_argument('--ibb-max-block', type=int, default=8192,
                   help="largest IBB block-size accepted (slixmpp's default 8192); "
                   "larger opens get <resource-constraint/>")
    r.add_argument('--ibb-allow-retry', action='store_true',
                   help='let a sender retry IBB open on the same sid after '
                   '<resource-constraint/> (real slixmpp answers the retry with '
                   '<not-acceptable/>)')
    r.add_argument('--range-offset', type=int, default=None,
                   help='ask for <range offset=N/> in the accept (only if offered)')
    r.add_argument('--range-length', type=int, default=None,
                   help='ask for <range length=N/> in the accept (only if offered)')

    sh = sub.add_parser('share', help='upload a file (XEP-0363) and send its link in a '
                        'chat message, as Conversations/Gajim/Dino do')
    sh.add_argument('--to', required=True, help='JID to send the link to (bare or full)')
    sh.add_argument('--file', required=True)
    sh.add_argument('--desc', help='<desc/> in the jabber:x:oob element')
    sh.add_argument('--bare', action='store_true',
                    help='send the URL as the body only, without jabber:x:oob')
    sh.add_argument('--service', help='upload service JID (default: discovered from '
                    'the account\'s domain)')
    sh.add_argument('--timeout', type=float, default=120.0)

    so = sub.add_parser('send-oob', help='offer a URL with a XEP-0066 jabber:iq:oob IQ '
                        '(serving --file from a one-shot HTTP server on 127.0.0.1)')
    so.add_argument('--to', required=True, help='full JID of the receiver')
    src = so.add_mutually_exclusive_group(required=True)
    src.add_argument('--file', help='serve this file and offer its URL')
    src.add_argument('--url', help='offer this URL as it is (nothing is served)')
    so.add_argument('--desc', help='<desc/> in the offer')
    so.add_argument('--timeout', type=float, default=120.0,
                    help='wait this long for the answer, which comes only after the '
                    'receiver has fetched the file (120)')

    ro = sub.add_parser('receive-oob', help='answer XEP-0066 jabber:iq:oob offers: fetch '
                        'the URL, then answer')
    ro.add_argument('--dir', required=True)
    ro.add_argument('--count', type=int, default=1)
    ro.add_argument('--timeout', type=float, default=300.0)
    how = ro.add_mutually_exclusive_group()
    how.add_argument('--reject', action='store_true',
                     help='answer every offer with <not-acceptable/> (406)')
    how.add_argument('--fail', action='store_true',
                     help='answer every offer with <item-not-found/> (404) without '
                     'fetching, as if the download had failed')
    ro.add_argument('--keep-going', action='store_true',
                    help='do not exit on a failed or refused offer; wait for --count '
                    'successes')

    rl = sub.add_parser('receive-link', help='download the URLs of chat messages with '
                        'jabber:x:oob (XEP-0363 links)')
    rl.add_argument('--dir', required=True)
    rl.add_argument('--count', type=int, default=1)
    rl.add_argument('--timeout', type=float, default=300.0)
    rl.add_argument('--body-links', action='store_true',
                    help='also take a message whose whole body is one http(s) URL '
                    '(without jabber:x:oob)')
    rl.add_argument('--keep-going', action='store_true',
                    help='do not exit on a failed or refused link; wait for --count '
                    'successes')

    o = sub.add_parser('online', help='stay online')
    o.add_argument('--seconds', type=float, default=None,
                   help='exit 0 after S seconds (default: until SIGTERM)')
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)

    level = logging.ERROR
    if args.verbose == 1:
        level = logging.INFO
    elif args.verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr,
                        format='%(asctime)s %(levelname)-7s %(name)s: %(message)s')

    host, port = args.server
    if not is_loopback_host(host):
        emit('failed', error='--server must be a loopback address, got %s' % host)
        return EXIT_USAGE
    if not args.plaintext and not args.ca_file:
        emit('failed', error='--ca-file is required unless --plaintext')
        return EXIT_USAGE
    if args.command == 'send':
        if not os.path.isfile(args.file):
            emit('failed', error='no such file: %s' % args.file)
            return EXIT_USAGE
        if args.method == 's5b' and not args.proxy:
            emit('failed', error='--method s5b needs --proxy (slixmpp has no streamhost '
                 'of its own)')
            return EXIT_USAGE
        if not 0 < args.block_size <= 65535:
            emit('failed', error='--block-size must be 1..65535')
            return EXIT_USAGE
    if args.command in ('share', 'send-oob') and args.file and \
            not os.path.isfile(args.file):
        emit('failed', error='no such file: %s' % args.file)
        return EXIT_USAGE
    if args.command in ('receive', 'receive-oob', 'receive-link') and args.count < 1:
        emit('failed', error='--count must be >= 1')
        return EXIT_USAGE

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    xmpp = Peer(args)
    xmpp.connect((host, port), force_starttls=not args.plaintext,
                 disable_starttls=args.plaintext)
    task = loop.create_task(xmpp.run_command())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    code = loop.run_until_complete(task)
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnect(wait=2.0), 5))
    except Exception:  # pylint: disable=broad-except
        pass
    xmpp.abort()
    # Let slixmpp's own tasks finish quietly.
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()
    return code


if __name__ == '__main__':
    sys.exit(main())
