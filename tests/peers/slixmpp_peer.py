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
    online  [--seconds S]

Stdout carries JSON lines only (one object a line, flushed); logs go to stderr.
See README.md next to this file for the events, the exit codes and the slixmpp bugs
this script works around.
"""

import argparse
import asyncio
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import time
import uuid

try:
    from slixmpp import ClientXMPP, JID
    from slixmpp.exceptions import IqError, IqTimeout, XMPPError
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

log = logging.getLogger('slixmpp_peer')


def emit(event, **fields):
    """One JSON object a line on stdout, flushed."""
    obj = {"event": event}
    obj.update(fields)
    try:
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
            if args.command == 'send':
                coro = self.do_send()
            elif args.command == 'receive':
                coro = self.do_receive()
            else:
                coro = self.do_online()
            timeout = getattr(args, 'timeout', None)
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            fields = {}
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


def file_md5(path):
    h = hashlib.md5()
    with open(path, 'rb') as fh:
        while True:
            block = fh.read(1024 * 1024)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


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
    if args.command == 'receive' and args.count < 1:
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
