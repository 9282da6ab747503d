#!/usr/bin/python3
"""Gajim 1.7.3 (Debian package ``gajim``) as a headless Jingle File Transfer peer for
Skiff's end-to-end tests.

    gajim_peer.py --jid JID --password PW --server HOST:PORT --ca-file PEM
                  [--resource R] [--s5b-port N] [--use-proxies] [-v|-vv] COMMAND ...

    send    --to FULLJID --file PATH [--method auto|s5b|ibb] [--timeout SECS]
            [--desc TEXT]
    receive --dir DIR [--count N] [--timeout SECS] [--reject]
    online  [--seconds S]

Run it with Debian's ``/usr/bin/python3`` as **root inside a network namespace that
has only ``lo``** (Gajim offers every local address as a SOCKS5 streamhost). The script
checks that, then drops to ``nobody``/``nogroup`` (``setpriv``) with a private temporary
profile, starts a private D-Bus session (``dbus-run-session``) and a private ``Xvfb``,
and runs the real Gajim application (``gajim.gtk.application.GajimApplication``) in it,
with a few monkeypatches that stand in for the user: the account comes from the command
line, the server certificate is checked against ``--ca-file``, incoming file offers are
accepted into a staging folder (or rejected), and ``send`` starts a Jingle file
transfer the way the chat window's "Send File Directly" does.

Stdout carries JSON lines only (one object a line, flushed); logs go to stderr.
See README.md next to this file for events, exit codes and Gajim's quirks.
"""

import argparse
import ctypes
import hashlib
import ipaddress
import json
import logging
import os
import pwd
import grp
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EXIT_OK = 0
EXIT_FAILED = 1      # transfer failed, offer rejected, protocol error
EXIT_USAGE = 2       # bad arguments / environment
EXIT_CONNECT = 3     # could not connect / authenticate / TLS
EXIT_TIMEOUT = 4     # --timeout reached
EXIT_INTERRUPTED = 5  # SIGTERM/SIGINT before the command finished (online: 0)

CONNECT_TIMEOUT = 60.0     # Gajim start + sign-in
PRESENCE_WAIT = 10.0       # send: wait this long for the target's presence
CAPS_WAIT = 5.0            # send: then this long for its disco#info (entity caps)
PROXY_WAIT = 10.0          # send --use-proxies: wait for the proxy to be resolved
TERMINATE_WAIT = 10.0      # send: wait for the receiver's session-terminate
ACCOUNT = 'peer'           # Gajim's account name inside the private profile
RUN_AS = ('nobody', 'nogroup')

NS_S5B = 'urn:xmpp:jingle:transports:s5b:1'
NS_IBB = 'urn:xmpp:jingle:transports:ibb:1'
METHOD_OF_NS = {NS_S5B: 's5b', NS_IBB: 'ibb'}

log = logging.getLogger('gajim_peer')

_emit_lock = threading.Lock()
_emit_fd = None   # the inner process writes JSON to a dup of its original stdout


def emit(event, **fields):
    """One JSON object a line on stdout (or the inner's JSON fd), flushed."""
    obj = {"event": event}
    obj.update(fields)
    line = (json.dumps(obj) + "\n").encode('utf-8')
    with _emit_lock:
        try:
            if _emit_fd is not None:
                os.write(_emit_fd, line)
            else:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass


def is_loopback_host(host):
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
    """Basename only: no directories, no control characters, never '', '.' or '..'."""
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


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as fh:
        while True:
            block = fh.read(1024 * 1024)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


# ============================================================================ outer
# Runs as root (the test harness's process) inside the network namespace.

def build_parser():
    p = argparse.ArgumentParser(
        prog='gajim_peer.py',
        description='Gajim 1.7 as a headless Jingle file-transfer test peer '
        '(JSON lines on stdout).')
    p.add_argument('--jid', required=True, help='bare JID of the account')
    p.add_argument('--password', required=True)
    p.add_argument('--server', required=True, type=parse_hostport,
                   help='HOST:PORT of the XMPP server (loopback only)')
    p.add_argument('--ca-file', required=True,
                   help='PEM CA that issued the server certificate (STARTTLS, '
                   'server name = the JID\'s domain)')
    p.add_argument('--resource', help="resource (default: Gajim's 'gajim.<random>')")
    p.add_argument('--s5b-port', type=int, default=28011,
                   help="port of Gajim's own SOCKS5 streamhost "
                   "(setting file_transfers_port, default 28011)")
    p.add_argument('--use-proxies', action='store_true',
                   help="Gajim's 'use_ft_proxies': discover the server's SOCKS5 "
                   "proxy and offer it as a candidate too (default off, as in Gajim)")
    p.add_argument('--s5b-connect-loopback', action='store_true',
                   help="let Gajim connect to the peer's streamhosts on 127.0.0.1/::1 "
                   "(stock Gajim skips them, so it never nominates a candidate of "
                   "the peer in a loopback-only namespace)")
    p.add_argument('-v', '--verbose', action='count', default=0,
                   help='stderr: -v peer info and Gajim warnings, -vv Gajim -v '
                   '(debug with every XML stanza)')
    sub = p.add_subparsers(dest='command', required=True)

    s = sub.add_parser('send', help='offer and send one file (Jingle FT :5)')
    s.add_argument('--to', required=True, help='full JID of the receiver')
    s.add_argument('--file', required=True)
    s.add_argument('--method', choices=['auto', 's5b', 'ibb'], default='auto',
                   help="auto: Gajim's choice from the receiver's disco#info "
                   "(s5b if advertised, else ibb, else nothing is sent); s5b/ibb: "
                   "force that transport whatever the receiver advertises")
    s.add_argument('--desc', default='', help='<desc/> of the offered file')
    s.add_argument('--timeout', type=float, default=120.0)

    r = sub.add_parser('receive', help='accept (or reject) Jingle file offers')
    r.add_argument('--dir', required=True)
    r.add_argument('--count', type=int, default=1)
    r.add_argument('--timeout', type=float, default=300.0)
    r.add_argument('--reject', action='store_true',
                   help="reject every offer as Gajim's Reject button does "
                   "(session-terminate <cancel/>)")

    o = sub.add_parser('online', help='stay online')
    o.add_argument('--seconds', type=float, default=None,
                   help='exit 0 after S seconds (default: until SIGTERM)')
    return p


def netns_interfaces():
    """Interface names of this process's network namespace (netlink, not /sys)."""
    return sorted(name for _idx, name in socket.if_nameindex())


def outer_main(argv=None):
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
    if host.lower() == 'localhost':
        host = '127.0.0.1'
    if '@' not in args.jid or '/' in args.jid:
        emit('failed', error='--jid must be a bare JID user@domain')
        return EXIT_USAGE
    ifaces = netns_interfaces()
    if ifaces != ['lo']:
        emit('failed', error='refusing to run Gajim outside a network namespace with '
             'only lo (it offers every local address as a streamhost); found: %s'
             % ', '.join(ifaces))
        return EXIT_USAGE
    if not os.path.isfile(args.ca_file):
        emit('failed', error='no such CA file: %s' % args.ca_file)
        return EXIT_USAGE
    if args.command == 'send':
        if not os.path.isfile(args.file):
            emit('failed', error='no such file: %s' % args.file)
            return EXIT_USAGE
        if os.path.getsize(args.file) == 0:
            emit('failed', error='Gajim refuses to send empty files')
            return EXIT_USAGE
        if '/' not in args.to:
            emit('failed', error='--to must be a full JID (Jingle needs a resource)')
            return EXIT_USAGE
    if args.command == 'receive':
        if args.count < 1:
            emit('failed', error='--count must be >= 1')
            return EXIT_USAGE
        os.makedirs(args.dir, exist_ok=True)
    for tool in ('Xvfb', 'dbus-run-session', 'setpriv'):
        if shutil.which(tool) is None:
            emit('failed', error='%s not found (apt-get install gajim xvfb dbus '
                 'util-linux)' % tool)
            return EXIT_USAGE

    as_root = os.geteuid() == 0
    if as_root:
        uid = pwd.getpwnam(RUN_AS[0]).pw_uid
        gid = grp.getgrnam(RUN_AS[1]).gr_gid
    else:
        uid, gid = os.geteuid(), os.getegid()

    work = tempfile.mkdtemp(prefix='gajim-peer-')
    try:
        return _run(args, host, port, work, uid, gid, as_root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args, host, port, work, uid, gid, as_root):
    dirs = {name: os.path.join(work, name)
            for name in ('home', 'profile', 'inbox', 'outbox', 'runtime')}
    for d in dirs.values():
        os.makedirs(d, mode=0o700)
    script = os.path.join(work, 'gajim_peer.py')
    shutil.copyfile(os.path.abspath(__file__), script)
    ca_copy = os.path.join(work, 'ca.pem')
    shutil.copyfile(args.ca_file, ca_copy)

    job = {
        'jid': args.jid, 'password': args.password, 'host': host, 'port': port,
        'ca_file': ca_copy, 'resource': args.resource, 's5b_port': args.s5b_port,
        'use_proxies': args.use_proxies,
        'connect_loopback': args.s5b_connect_loopback, 'verbose': args.verbose,
        'command': args.command, 'dirs': dirs,
    }
    if args.command == 'send':
        # nobody may not be able to read the caller's file: hand Gajim a copy.
        name = os.path.basename(args.file)
        copy = os.path.join(dirs['outbox'], name)
        shutil.copyfile(args.file, copy)
        job.update(to=args.to, file=copy, method=args.method, desc=args.desc,
                   timeout=args.timeout)
    elif args.command == 'receive':
        job.update(count=args.count, timeout=args.timeout, reject=args.reject)
    else:
        job.update(seconds=args.seconds)
    job_path = os.path.join(work, 'job.json')
    with open(job_path, 'w') as fh:
        json.dump(job, fh)
    os.chmod(job_path, 0o600)
    for root, subdirs, files in os.walk(work):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)
    os.chmod(work, 0o700)

    env = {
        'HOME': dirs['home'], 'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
        'LANG': 'C.UTF-8', 'LC_ALL': 'C.UTF-8',
        'XDG_RUNTIME_DIR': dirs['runtime'],
        'XDG_CONFIG_HOME': os.path.join(dirs['home'], '.config'),
        'XDG_DATA_HOME': os.path.join(dirs['home'], '.local', 'share'),
        'XDG_CACHE_HOME': os.path.join(dirs['home'], '.cache'),
        'NO_AT_BRIDGE': '1', 'GTK_A11Y': 'none', 'GSETTINGS_BACKEND': 'memory',
        'GIO_USE_VFS': 'local', 'PYTHONDONTWRITEBYTECODE': '1',
    }
    cmd = []
    if as_root:
        cmd += ['setpriv', '--reuid=%d' % uid, '--regid=%d' % gid, '--clear-groups']
    cmd += ['env', '-i'] + ['%s=%s' % kv for kv in sorted(env.items())]
    cmd += ['dbus-run-session', '--', sys.executable or '/usr/bin/python3', script,
            '--inner', job_path]
    log.info('starting Gajim: %s', ' '.join(cmd[:6]))

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=None, start_new_session=True, cwd=dirs['home'])

    def on_signal(_signum, _frame):
        # Ask the inner Gajim to stop (it answers with "stopped" and exits).
        try:
            proc.stdin.write(b'stop\n')
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    hard_limit = CONNECT_TIMEOUT + 60 + (getattr(args, 'timeout', None) or 0)
    watchdog = None
    if args.command != 'online' or args.seconds is not None:
        hard_limit += (args.seconds or 0) if args.command == 'online' else 0

        def kill():
            log.error('inner Gajim did not finish in %ss: killing it', hard_limit)
            _kill_group(proc)
        watchdog = threading.Timer(hard_limit, kill)
        watchdog.daemon = True
        watchdog.start()

    final = None
    for raw in proc.stdout:
        line = raw.decode('utf-8', 'replace').strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            log.warning('inner: %s', line)
            continue
        if obj.get('event') == 'completed' and args.command == 'receive' \
                and obj.get('path'):
            obj = _collect_received(obj, args.dir)
        if obj.get('event') in ('failed', 'completed', 'stopped'):
            final = obj.get('event')
        sys.stdout.write(json.dumps(obj) + '\n')
        sys.stdout.flush()
    code = proc.wait()
    if watchdog is not None:
        watchdog.cancel()
    _kill_group(proc)
    if code < 0 or code > 5:
        if final != 'failed':
            emit('failed', error='Gajim exited abnormally (%s)' % code)
        return EXIT_FAILED
    return code


def _kill_group(proc):
    """SIGKILL what is left of the inner's process group (dbus-daemon, Xvfb)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _collect_received(obj, directory):
    """Move a received file from the private staging folder to --dir (as root)."""
    src = obj['path']
    dst = unique_path(directory, safe_name(obj.get('name') or os.path.basename(src)))
    try:
        shutil.move(src, dst)
        try:
            os.chown(dst, os.geteuid(), os.getegid())
        except OSError:
            pass
        os.chmod(dst, 0o644)
        obj['staging_path'] = src
        obj['path'] = dst
        obj['size'] = os.path.getsize(dst)
        obj['sha256'] = file_sha256(dst)
    except OSError as exc:
        obj['move_error'] = str(exc)
    return obj


# ============================================================================ inner
# Runs as nobody under dbus-run-session: starts Xvfb, then Gajim with patches.

def _start_xvfb():
    """Private Xvfb; -displayfd picks a free display. Dies with us (PDEATHSIG)."""
    rfd, wfd = os.pipe()
    libc = ctypes.CDLL(None, use_errno=True)

    def child_setup():
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)   # PR_SET_PDEATHSIG

    proc = subprocess.Popen(
        ['Xvfb', '-displayfd', str(wfd), '-screen', '0', '1280x800x24',
         '-nolisten', 'tcp', '-noreset'],
        pass_fds=(wfd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, preexec_fn=child_setup)
    os.close(wfd)
    data = b''
    deadline = time.time() + 15
    import select
    while not data.endswith(b'\n') and time.time() < deadline:
        ready, _, _ = select.select([rfd], [], [], 0.5)
        if ready:
            chunk = os.read(rfd, 64)
            if not chunk:
                break
            data += chunk
    os.close(rfd)
    if not data.strip():
        proc.kill()
        raise RuntimeError('Xvfb did not start')
    return proc, ':' + data.strip().decode()


class Driver:
    """Stands in for the user of the running Gajim."""

    def __init__(self, job):
        self.job = job
        self.command = job['command']
        self.exit_code = None
        self.signed_in = False
        self.started = time.time()
        self.transfers = {}       # jingle sid -> dict
        self.finished = 0
        self.rejected = 0
        self.sent_sid = None
        self.send_done = False
        self._last_progress = {}
        self._pending_contents = {}
        self._local_terminate = set()

    # ------------------------------------------------------------- patching
    def patch(self):
        import nbxmpp.connection
        from gi.repository import Gio
        from gajim.common import app
        from gajim.common.settings import Settings
        from gajim.common import client as client_mod
        from gajim.common.modules import jingle as jingle_mod
        from gajim.common.jingle_ftstates import StateTransfering
        from gajim.common.jingle_ftstates import StateCandSent
        from gajim.common.jingle_transport import TransportType
        from gajim.common.jingle_transport import JingleTransportIBB
        from gajim.common.jingle_transport import JingleTransportSocks5
        from gajim.common.jingle_ft import JingleFileTransfer
        from gajim.common.jingle_session import JingleSession
        from gajim import gui_interface
        from gajim.gtk import application as application_mod
        driver = self
        job = self.job

        # 1. The account and global settings, right after the settings DB is loaded
        #    (before Gajim creates its clients).
        orig_settings_init = Settings.init

        def settings_init(settings_self):
            orig_settings_init(settings_self)
            driver._configure(settings_self)
        Settings.init = settings_init

        # 2. TLS: accept the server certificate if it chains to --ca-file (Gio's own
        #    name check against the domain still applies).
        ca_cert = Gio.TlsCertificate.new_from_file(job['ca_file'])
        orig_accept = nbxmpp.connection.Connection._accept_certificate

        def accept_certificate(con_self):
            errors = con_self._peer_certificate_errors
            cert = con_self._peer_certificate
            if errors and Gio.TlsCertificateFlags.UNKNOWN_CA in errors and cert:
                flags = cert.verify(None, ca_cert)
                if not flags & Gio.TlsCertificateFlags.UNKNOWN_CA:
                    log.info('server certificate chains to --ca-file')
                    errors.discard(Gio.TlsCertificateFlags.UNKNOWN_CA)
            ok = orig_accept(con_self)
            if not ok:
                emit('failed', error='TLS certificate rejected: %s' % sorted(
                    str(e) for e in con_self._peer_certificate_errors))
                driver.finish(EXIT_CONNECT)
            return ok
        nbxmpp.connection.Connection._accept_certificate = accept_certificate

        # No dialogs from the client module (bad certificate etc.).
        orig_open_window = client_mod.open_window

        def open_window(name, **kwargs):
            if name == 'SSLErrorDialog':
                emit('failed', error='TLS certificate error: %s' % kwargs.get('error'))
                driver.finish(EXIT_CONNECT)
                return None
            return orig_open_window(name, **kwargs)
        client_mod.open_window = open_window

        # 3. Transfer errors Gajim shows in an ErrorDialog (IBB/SOCKS5 errors).
        def file_error(_title, message):
            driver._on_transfer_error(str(message))
        gui_interface.Interface.handle_event_file_error = staticmethod(file_error)

        orig_progress = gui_interface.Interface.handle_event_file_progress

        def file_progress(iface_self, account, file_props):
            driver._on_progress(file_props)
            return orig_progress(iface_self, account, file_props)
        gui_interface.Interface.handle_event_file_progress = file_progress

        # 4. Which transport actually carries the data (also after a fallback).
        orig_transferring = StateTransfering.action

        def transferring(state_self, args=None):
            jft = state_self.jft
            driver._on_transferring(jft)
            return orig_transferring(state_self, args)
        StateTransfering.action = transferring

        orig_cand_sent = StateCandSent._send_candidate

        def send_candidate(state_self, args):
            jft = state_self.jft
            if 'candError' in args:
                emit('candidate_error_sent', sid=jft.session.sid)
            else:
                sh = args['streamhost']
                emit('candidate_used_sent', sid=jft.session.sid,
                     cid=sh.get('candidate_id'), host=sh.get('host'),
                     port=sh.get('port'), type=sh.get('type'), jid=sh.get('jid'))
            return orig_cand_sent(state_self, args)
        StateCandSent._send_candidate = send_candidate

        # 4b. Gajim bug: an incoming session-initiate builds the content with
        #     JingleFileTransfer(session, transport=...) but __init__ requires
        #     file_props, so every incoming Jingle file offer dies with a TypeError
        #     (no answer at all). Give it a placeholder, and afterwards use the
        #     FileProp that _raise_event registers and hands to the UI.
        from gajim.common.file_props import FilesProp
        orig_ft_init = JingleFileTransfer.__init__

        def ft_init(ft_self, session, file_props=None, transport=None, senders=None):
            if file_props is None:
                file_props = FilesProp.getNewFileProp(session.connection.name,
                                                      session.sid)
            orig_ft_init(ft_self, session, file_props, transport, senders)
        JingleFileTransfer.__init__ = ft_init

        orig_raise = JingleFileTransfer._raise_event

        def raise_event(ft_self, stanza, content):
            sid = stanza.getTag('jingle').getAttr('sid')
            account = ft_self.session.connection.name
            driver._pending_contents[sid] = ft_self
            try:
                return orig_raise(ft_self, stanza, content)
            finally:
                fp = FilesProp.getFileProp(account, sid)
                if fp is not None:
                    ft_self.file_props = fp
                driver._pending_contents.pop(sid, None)
        JingleFileTransfer._raise_event = raise_event

        # 4c. nbxmpp 4.2.2 bug: IBBData has no defaults, so parsing an incoming IBB
        #     <open/> (or <close/>) raises TypeError and the IQ is never answered:
        #     Gajim cannot receive over IBB at all.
        import nbxmpp.structs
        if not nbxmpp.structs.IBBData.__new__.__defaults__:
            nbxmpp.structs.IBBData.__new__.__defaults__ = (None, None, None)

        # 4c2. Gajim bug: when the peer used *our* streamhost, StateTransfering calls
        #      remove_other_servers(candidate host) and drops every accepted
        #      connection whose *peer* address differs from it. The listener is a
        #      dual-stack [::] socket, so an IPv4 peer shows up as ::ffff:127.0.0.1
        #      and the very connection the peer nominated is closed (the receiver
        #      sees EOF, error -1). Compare addresses with ::ffff: removed.
        from gajim.common import socks5 as socks5_mod

        def _norm(host):
            host = str(host)
            return host[7:] if host.lower().startswith('::ffff:') else host

        def remove_other_servers(queue, host_to_keep):
            for key, sock in queue.senders.copy().items():
                if _norm(sock.host) != _norm(host_to_keep) and sock.mode == 'server':
                    queue.remove_sender_by_key(key)
        socks5_mod.SocksQueue.remove_other_servers = remove_other_servers

        # 4d. --s5b-connect-loopback: Gajim never connects to a peer's streamhost on
        #     127.0.0.1 or ::1 ("to not connect to ourself"), and in the test
        #     namespace every candidate is loopback. Optional, off by default.
        if job.get('connect_loopback'):
            from gajim.common.socks5 import Socks5ReceiverClient
            from gajim.common.socks5 import Socks5SenderClient

            def connect_to_hosts(queue, account, transport_sid, on_success=None,
                                 on_failure=None, receiving=True):
                # SocksQueue.connect_to_hosts without the loopback filter.
                queue.on_success[transport_sid] = on_success
                queue.on_failure[transport_sid] = on_failure
                file_props = FilesProp.getFilePropByTransportSid(account,
                                                                 transport_sid)
                file_props.failure_cb = on_failure
                streamhosts = list(file_props.streamhosts)
                if not streamhosts:
                    on_failure(file_props.transport_sid)
                for streamhost in streamhosts:
                    if receiving:
                        file_props.type_ = 'r'
                        obj = Socks5ReceiverClient(queue.idlequeue, streamhost,
                                                   transport_sid, file_props)
                    else:
                        if file_props.sha_str:
                            idx = file_props.sha_str
                        else:
                            idx = queue.idx
                            queue.idx = queue.idx + 1
                        file_props.type_ = 's'
                        if streamhost.get('type') == 'proxy':
                            file_props.is_a_proxy = True
                            file_props.proxy_sender = streamhost['target']
                            file_props.proxy_receiver = streamhost['initiator']
                        obj = Socks5SenderClient(
                            queue.idlequeue, idx, queue, _sock=None,
                            host=str(streamhost['host']),
                            port=int(streamhost['port']), connected=False,
                            file_props=file_props,
                            initiator=streamhost['initiator'],
                            target=streamhost['target'])
                        obj.streamhost = streamhost
                    queue.add_sockobj(account, obj)
                    streamhost['idx'] = obj.queue_idx
            socks5_mod.SocksQueue.connect_to_hosts = connect_to_hosts

        # 5. send --method s5b|ibb: the transport choice of start_file_transfer.
        method = job.get('method', 'auto')
        from nbxmpp.namespaces import Namespace
        from gajim.common import helpers

        def start_file_transfer(jingle_self, jid, file_props, request=False):
            contact = jingle_self._con.get_module('Contacts').get_contact(jid)
            if method == 's5b':
                transport = JingleTransportSocks5()
            elif method == 'ibb':
                transport = JingleTransportIBB()
            elif contact.supports(Namespace.JINGLE_BYTESTREAM):
                transport = JingleTransportSocks5()
            elif contact.supports(Namespace.JINGLE_IBB):
                transport = JingleTransportIBB()
            else:
                emit('failed', error='Gajim found neither %s nor %s in the '
                     "receiver's disco#info (entity caps): it sends nothing"
                     % (NS_S5B, NS_IBB), to=str(jid))
                driver.finish(EXIT_FAILED)
                return None
            jingle = JingleSession(jingle_self._con, weinitiate=True, jid=jid,
                                   werequest=request)
            jingle.session_type_ft = True
            jingle_self._sessions[jingle.sid] = jingle
            file_props.sid = jingle.sid
            senders = 'responder' if request else 'initiator'
            transfer = JingleFileTransfer(jingle, transport=transport,
                                          file_props=file_props, senders=senders)
            file_props.transport_sid = transport.sid
            file_props.algo = jingle_self._Jingle__hash_support(contact)
            driver.sent_sid = jingle.sid
            emit('offering', to=str(jid), sid=jingle.sid, transport_sid=transport.sid,
                 name=file_props.name, size=file_props.size,
                 method='ibb' if transport.type_ == TransportType.IBB else 's5b',
                 hash_algo=file_props.algo)
            jingle.add_content('file' + helpers.get_random_string(), transfer)
            jingle.start_session()
            return transfer.transport.sid
        jingle_mod.Jingle.start_file_transfer = start_file_transfer

        # 5b. Tell our own session-terminate apart from the peer's (Gajim raises the
        #     same events for both).
        orig_terminate = JingleSession._session_terminate

        def session_terminate(session_self, reason=None):
            reason_name = None
            if reason is not None:
                kids = [c.getName() for c in reason.getChildren()
                        if c.getName() != 'text']
                reason_name = kids[0] if kids else None
            emit('terminate_sent', sid=session_self.sid, reason=reason_name)
            driver._local_terminate.add(session_self.sid)
            try:
                return orig_terminate(session_self, reason)
            finally:
                driver._local_terminate.discard(session_self.sid)
        JingleSession._session_terminate = session_terminate

        # 6. Install our event handlers once the application is up.
        orig_startup = application_mod.GajimApplication._startup

        def startup(app_self):
            orig_startup(app_self)
            driver._install()
        application_mod.GajimApplication._startup = startup
        self.app = app

    def _configure(self, settings):
        job = self.job
        user, _, domain = job['jid'].partition('@')
        if ACCOUNT not in settings.get_accounts():
            settings.add_account(ACCOUNT)
        acc = {
            'name': user, 'hostname': domain, 'password': job['password'],
            'savepass': True, 'active': True, 'autoconnect': True,
            'use_custom_host': True, 'custom_host': job['host'],
            'custom_port': int(job['port']), 'custom_type': 'START TLS',
            'use_ft_proxies': bool(job['use_proxies']),
            'test_ft_proxies_on_startup': False,
            'ft_send_local_ips': True, 'restore_last_status': False,
            'account_label': 'peer',
        }
        if job.get('resource'):
            acc['resource'] = job['resource']
        for key, value in acc.items():
            try:
                settings.set_account_setting(ACCOUNT, key, value)
            except Exception as exc:  # pylint: disable=broad-except
                log.warning('account setting %s: %s', key, exc)
        glob = {
            'use_keyring': False, 'show_trayicon': False, 'check_for_update': False,
            'remote_control': False, 'file_transfers_port': int(job['s5b_port']),
            'notify_on_file_complete': False, 'last_save_dir': job['dirs']['inbox'],
            'show_main_window_on_startup': 'always',
        }
        for key, value in glob.items():
            try:
                settings.set(key, value)
            except Exception as exc:  # pylint: disable=broad-except
                log.warning('setting %s: %s', key, exc)

    def _install(self):
        from gi.repository import GLib
        from gajim.common import ged
        app = self.app
        for name, handler in (
                ('signed-in', self._on_signed_in),
                ('password-required', self._on_password_required),
                ('file-request-received', self._on_file_request),
                ('file-completed', self._on_file_completed),
                ('file-error', self._on_file_error),
                ('file-hash-error', self._on_file_hash_error),
                ('file-request-error', self._on_file_error),
                ('file-send-error', self._on_file_error),
                ('jingle-ft-cancelled-received', self._on_jingle_end),
                ('jingle-disconnected-received', self._on_jingle_end),
                ('jingle-error-received', self._on_jingle_error)):
            app.ged.register_event_handler(name, ged.PRECORE, handler)
        GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP |
                          GLib.IO_ERR, self._on_stdin)
        GLib.timeout_add_seconds(int(CONNECT_TIMEOUT), self._connect_timeout)

    # ------------------------------------------------------------- lifecycle
    def finish(self, code):
        """Exit with `code` once Gajim has signed out (at most 5 s later)."""
        from gi.repository import GLib
        if self.exit_code is not None:
            return
        self.exit_code = code
        log.info('finishing with exit code %s', code)

        def hard_exit():
            _flush_and_exit(code)
        GLib.timeout_add_seconds(5, hard_exit)

        def shutdown():
            try:
                self.app.app.start_shutdown()
            except Exception:  # pylint: disable=broad-except
                log.exception('shutdown failed')
                _flush_and_exit(code)
            return False
        GLib.timeout_add(300, shutdown)

    def _on_stdin(self, fd, condition):
        try:
            data = os.read(fd, 1024)
        except OSError:
            data = b''
        if data and b'stop' not in data:
            return True
        emit('stopped', reason='signal' if data else 'stdin closed')
        self.finish(EXIT_OK if self.command == 'online' else EXIT_INTERRUPTED)
        return False

    def _connect_timeout(self):
        if not self.signed_in and self.exit_code is None:
            emit('failed', error='not signed in within %ds' % CONNECT_TIMEOUT)
            self.finish(EXIT_CONNECT)
        return False

    def _command_timeout(self):
        if self.exit_code is not None:
            return False
        fields = {}
        if self.command == 'receive':
            fields = {'finished': self.finished, 'count': self.job['count']}
        pending = [{'sid': sid, 'name': t.get('name'), 'received': t.get('bytes')}
                   for sid, t in self.transfers.items() if not t.get('done')]
        if pending:
            fields['pending'] = pending
        emit('failed', error='timeout after %ss' % self.job['timeout'], **fields)
        self.finish(EXIT_TIMEOUT)
        return False

    @property
    def client(self):
        return self.app.get_client(ACCOUNT)

    def _on_password_required(self, _event):
        emit('failed', error='authentication failed (not-authorized)')
        self.finish(EXIT_CONNECT)
        return True

    def _on_signed_in(self, event):
        from gi.repository import GLib
        if self.signed_in:
            return
        self.signed_in = True
        jid = str(self.client.get_own_jid())
        emit('online', jid=jid)
        if self.command == 'online':
            emit('ready', jid=jid)
            if self.job.get('seconds') is not None:
                GLib.timeout_add(int(self.job['seconds'] * 1000),
                                 lambda: self.finish(EXIT_OK) and False)
        elif self.command == 'receive':
            emit('ready', jid=jid)
            GLib.timeout_add(int(self.job['timeout'] * 1000), self._command_timeout)
        else:
            GLib.timeout_add(int(self.job['timeout'] * 1000), self._command_timeout)
            self._wait_for_target(time.time())

    # ------------------------------------------------------------- send
    def _wait_for_target(self, since):
        """Wait for the receiver's presence (and caps/disco#info, and the proxy)."""
        from gi.repository import GLib
        from nbxmpp.protocol import JID
        app = self.app
        to = JID.from_string(self.job['to'])
        contact = self.client.get_module('Contacts').get_contact(to)
        waited = time.time() - since
        available = getattr(contact, 'is_available', False)
        disco = app.storage.cache.get_last_disco_info(to)
        proxy_ok = True
        if self.job['use_proxies']:
            default = app.proxy65_manager.get_default_for_name(ACCOUNT)
            proxy_ok = bool(default and app.proxy65_manager.get_proxy(
                default, ACCOUNT)[0])
        if waited < PRESENCE_WAIT and not available:
            GLib.timeout_add(200, self._wait_for_target, since)
            return False
        if available and disco is None and waited < PRESENCE_WAIT + CAPS_WAIT:
            GLib.timeout_add(200, self._wait_for_target, since)
            return False
        if not proxy_ok and waited < PROXY_WAIT:
            GLib.timeout_add(200, self._wait_for_target, since)
            return False
        features = sorted(disco.features) if disco is not None else None
        emit('ready', jid=str(self.client.get_own_jid()), to=str(to),
             available=bool(available), disco_features=features,
             proxy=(app.proxy65_manager.get_proxy(
                 app.proxy65_manager.get_default_for_name(ACCOUNT), ACCOUNT)
                 if self.job['use_proxies'] else None))
        self._send()
        return False

    def _send(self):
        from nbxmpp.protocol import JID
        app = self.app
        to = JID.from_string(self.job['to'])
        path = self.job['file']
        self.send_sha = file_sha256(path)
        contacts = self.client.get_module('Contacts')
        bare = contacts.get_contact(to.new_as_bare())
        ft_window = app.interface.instances['file_transfers']
        self.send_started = time.time()
        ok = ft_window.send_file(ACCOUNT, bare, to, path, self.job.get('desc') or '')
        if not ok and self.exit_code is None:
            emit('failed', error='Gajim did not start the transfer')
            self.finish(EXIT_FAILED)

    # ------------------------------------------------------------- receive
    def _on_file_request(self, event):
        from gi.repository import GLib
        fp = event.file_props
        stanza = event.stanza
        jingle = stanza.getTag('jingle')
        content = jingle.getTag('content') if jingle else None
        transport = content.getTag('transport') if content else None
        ns = transport.getNamespace() if transport else None
        cands = []
        if transport is not None:
            for c in transport.getTags('candidate'):
                cands.append(dict(c.getAttrs()))
        desc = content.getTag('description') if content else None
        request = desc.getTag('request') if desc else None
        info = {'from': event.fjid, 'sid': fp.sid, 'name': fp.name, 'size': fp.size,
                'date': fp.date, 'desc': fp.desc or None,
                'hash': ({'algo': fp.algo, 'value': fp.hash_} if fp.hash_ else None),
                'methods': [METHOD_OF_NS.get(ns, ns)] if ns else [],
                'transport_sid': transport.getAttr('sid') if transport else None,
                'block_size': transport.getAttr('block-size') if transport else None,
                'candidates': cands, 'request': request is not None}
        emit('offer', **info)
        if self.command != 'receive' or request is not None:
            return None
        self.transfers[fp.sid] = {'name': fp.name, 'from': event.fjid,
                                  'method': METHOD_OF_NS.get(ns, ns),
                                  'started': time.time(), 'bytes': 0}
        GLib.idle_add(self._answer_offer, event)
        return None

    def _answer_offer(self, event):
        fp = event.file_props
        client = self.client
        if self.job.get('reject'):
            client.get_module('Bytestream').send_file_rejection(fp)
            self.transfers.pop(fp.sid, None)
            self.rejected += 1
            emit('rejected', sid=fp.sid, name=fp.name, **{'from': event.fjid})
            if self.rejected >= self.job['count']:
                self.finish(EXIT_OK)
            return False
        folder = os.path.join(self.job['dirs']['inbox'], safe_name(fp.sid))
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, safe_name(fp.name))
        contact = client.get_module('Contacts').get_contact(event.jid)
        # What FileTransfersWindow.on_file_request_accepted does after the user
        # picked a file name in the save dialog.
        self.app.interface.instances['file_transfers']._start_receive(
            path, ACCOUNT, contact, fp)
        emit('accepted', sid=fp.sid, name=fp.name, staging_path=path,
             **{'from': event.fjid})
        return False

    # ------------------------------------------------------------- transfer events
    def _method_of(self, fp):
        """s5b/ibb of the content that carries file_props (None if unknown)."""
        from gajim.common.jingle_transport import TransportType
        try:
            session = self.client.get_module('Jingle').get_jingle_session(
                None, sid=fp.sid)
        except Exception:  # pylint: disable=broad-except
            session = None
        if session is not None:
            for content in list(session.contents.values()):
                if getattr(content, 'file_props', None) is fp:
                    return 'ibb' if content.transport.type_ == TransportType.IBB \
                        else 's5b'
        t = self.transfers.get(fp.sid)
        return t.get('method') if t else None

    def _on_transferring(self, jft):
        from gajim.common.jingle_transport import TransportType
        fp = jft.file_props
        method = 'ibb' if jft.transport.type_ == TransportType.IBB else 's5b'
        t = self.transfers.setdefault(fp.sid, {'name': fp.name,
                                               'started': time.time(), 'bytes': 0})
        t['method'] = method
        fields = {'sid': fp.sid, 'method': method}
        if method == 's5b':
            ours = jft.nominated_cand.get('our-cand')
            peers = jft.nominated_cand.get('peer-cand')
            used = ours if jft.is_our_candidate_used() else peers
            fields['candidate'] = 'ours' if jft.is_our_candidate_used() else 'peer'
            if used:
                fields['streamhost'] = {k: used.get(k) for k in (
                    'candidate_id', 'host', 'port', 'type', 'jid', 'priority')}
        emit('transferring', **fields)

    def _on_progress(self, fp):
        now = time.time()
        if now - self._last_progress.get(fp.sid, 0) < 0.5:
            return
        self._last_progress[fp.sid] = now
        t = self.transfers.get(fp.sid)
        if t is not None:
            t['bytes'] = fp.received_len
        emit('progress', sid=fp.sid, bytes=fp.received_len, size=fp.size)

    def _on_file_completed(self, event):
        # May run in Gajim's hash-checking thread: look things up now, act later.
        from gi.repository import GLib
        fp = event.file_props
        method = self._method_of(fp)
        GLib.idle_add(self._completed, fp, method)
        return None

    def _completed(self, fp, method):
        t = self.transfers.setdefault(fp.sid, {'started': time.time()})
        if t.get('done'):
            return False
        t['done'] = True
        seconds = round(time.time() - t.get('started', time.time()), 3)
        if fp.type_ == 'r':
            path = fp.file_name
            size = os.path.getsize(path) if os.path.exists(path) else None
            emit('completed', sid=fp.sid, name=fp.name, path=path, size=size,
                 sha256=file_sha256(path) if size is not None else None,
                 method=method, seconds=seconds,
                 hash_checked=({'algo': fp.algo, 'value': fp.hash_}
                               if fp.hash_ else None),
                 **{'from': fp.sender})
            if self.command == 'receive':
                self.finished += 1
                if self.finished >= self.job['count']:
                    # Gajim sends session-terminate right after this event.
                    self.finish(EXIT_OK)
        else:
            self.send_done = True
            emit('completed', to=fp.receiver, sid=fp.sid, name=fp.name,
                 size=fp.received_len, sha256=self.send_sha, method=method,
                 seconds=round(time.time() - self.send_started, 3))
            from gi.repository import GLib
            GLib.timeout_add(int(TERMINATE_WAIT * 1000), self._no_terminate)
        return False

    def _no_terminate(self):
        if self.exit_code is None:
            emit('terminated', sid=self.sent_sid, reason=None,
                 note='no session-terminate within %ss' % TERMINATE_WAIT)
            self.finish(EXIT_OK)
        return False

    def _on_file_error(self, event):
        from gi.repository import GLib
        fp = event.file_props
        GLib.idle_add(self._failed_fp, fp, getattr(event, 'error_msg', '') or
                      'transfer failed (Gajim error %s)' % fp.error)
        return None

    def _on_file_hash_error(self, event):
        from gi.repository import GLib
        GLib.idle_add(self._failed_fp, event.file_props,
                      'checksum mismatch (%s)' % event.file_props.algo)
        return None

    def _failed_fp(self, fp, error):
        t = self.transfers.get(fp.sid, {})
        if t.get('done'):
            return False
        t['done'] = True
        emit('failed', error=error, sid=fp.sid, name=fp.name,
             received=fp.received_len, code=fp.error)
        self.finish(EXIT_FAILED)
        return False

    def _on_transfer_error(self, message):
        from gi.repository import GLib
        if self.exit_code is not None:
            return

        def later():
            emit('failed', error=message)
            self.finish(EXIT_FAILED)
            return False
        GLib.idle_add(later)

    def _on_jingle_end(self, event):
        from gi.repository import GLib
        if event.media not in (None, 'file'):
            return None
        if event.sid in self._local_terminate:
            # Our own session-terminate (already reported as terminate_sent).
            if self.command == 'send' and event.sid == self.sent_sid \
                    and not self.send_done and self.exit_code is None:
                GLib.idle_add(self._jingle_end, event.sid, event.name,
                              'local: %s' % event.reason, event.fjid)
            return None
        GLib.idle_add(self._jingle_end, event.sid, event.name, event.reason,
                      event.fjid)
        return None

    def _jingle_end(self, sid, name, reason, fjid):
        emit('terminated', sid=sid, reason=reason, **{'from': fjid})
        if self.command == 'send' and sid == self.sent_sid:
            if self.send_done:
                self.finish(EXIT_OK)
            elif self.exit_code is None:
                emit('rejected' if reason and reason.startswith('decline') or
                     reason and reason.startswith('cancel') else 'failed',
                     sid=sid, reason=reason, error='session ended: %s' % reason)
                self.finish(EXIT_FAILED)
        elif self.command == 'receive' and sid in self.transfers:
            t = self.transfers[sid]
            if not t.get('done') and not self.job.get('reject'):
                t['done'] = True
                emit('failed', error='session ended before the file was complete: %s'
                     % reason, sid=sid)
                self.finish(EXIT_FAILED)
        return False

    def _on_jingle_error(self, event):
        from gi.repository import GLib
        if event.reason in ('success', 'cancel', 'decline'):
            # Gajim bug: _session_terminate compares the reason *node* with these
            # strings, so every terminate it sends also raises jingle-error.
            return None
        GLib.idle_add(lambda: emit('jingle_error', sid=event.sid,
                                   reason=event.reason) and False)
        return None


def _flush_and_exit(code):
    try:
        sys.stderr.flush()
    except Exception:  # pylint: disable=broad-except
        pass
    os._exit(code)


def inner_main(job_path):
    global _emit_fd  # pylint: disable=global-statement
    # JSON goes to the original stdout; anything Gajim prints goes to stderr.
    _emit_fd = os.dup(1)
    os.dup2(2, 1)
    with open(job_path) as fh:
        job = json.load(fh)
    os.unlink(job_path)   # holds the password
    level = logging.WARNING
    if job['verbose'] >= 1:
        level = logging.INFO
    logging.basicConfig(level=level, stream=sys.stderr,
                        format='%(asctime)s %(levelname)-7s %(name)s: %(message)s')
    if os.geteuid() == 0:
        emit('failed', error='inner part must not run as root')
        return EXIT_USAGE
    try:
        xvfb, display = _start_xvfb()
    except (OSError, RuntimeError) as exc:
        emit('failed', error='cannot start Xvfb: %s' % exc)
        return EXIT_USAGE
    os.environ['DISPLAY'] = display
    log.info('Xvfb on %s, profile %s', display, job['dirs']['profile'])

    from gajim import gajim as gajim_main
    gajim_main._check_required_deps()
    gajim_main._set_env_vars()
    gajim_main._init_gui('GTK')
    driver = Driver(job)
    driver.patch()
    from gajim.gtk.application import GajimApplication
    application = GajimApplication()
    argv = ['gajim', '-c', job['dirs']['profile'], '-s']
    if job['verbose'] >= 2:
        argv.append('-v')
    elif job['verbose'] == 0:
        argv.append('-q')

    def on_signal(_num, _frame):
        emit('stopped', reason='signal')
        driver.finish(EXIT_OK if job['command'] == 'online' else EXIT_INTERRUPTED)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    application.run(argv)
    code = driver.exit_code if driver.exit_code is not None else EXIT_FAILED
    xvfb.kill()
    _flush_and_exit(code)


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--inner':
        sys.exit(inner_main(sys.argv[2]))
    sys.exit(outer_main())
