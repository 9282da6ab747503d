#!/usr/bin/env python3
"""Writes the seed corpora under seeds/: stanzas from the seed document (the XML
examples in ../../shared/seed/, when present) and examples in the style of the XEPs
(XEP-0096, 0065, 0047, 0066, 0030, 0004, 0363, RFC 6120/6121). Run from fuzz/."""
import os, re, struct

SEED_DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'seed', '000_04995213703e5849.txt')

XEP = {
 'si_offer': """<iq type='set' id='offer1' to='receiver@jabber.org/resource' from='sender@jabber.org/resource'><si xmlns='http://jabber.org/protocol/si' id='a0' mime-type='text/plain' profile='http://jabber.org/protocol/si/profile/file-transfer'><file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='test.txt' size='1022' hash='552da749930852c69ae5d2141d3766b1' date='1969-07-21T02:56:15Z'><desc>This is a test. If this were a real file...</desc><range/></file><feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'><option><value>http://jabber.org/protocol/bytestreams</value></option><option><value>http://jabber.org/protocol/ibb</value></option></field></x></feature></si></iq>""",
 'si_accept': """<iq type='result' to='sender@jabber.org/resource' id='offer1'><si xmlns='http://jabber.org/protocol/si'><file xmlns='http://jabber.org/protocol/si/profile/file-transfer'><range offset='128' length='894'/></file><feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='submit'><field var='stream-method'><value>http://jabber.org/protocol/bytestreams</value></field></x></feature></si></iq>""",
 's5b_hosts': """<iq from='requester@example.com/foo' id='hu3vax16' to='target@example.org/bar' type='set'><query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46' mode='tcp'><streamhost host='24.24.24.1' jid='requester@example.com/foo' port='5086'/><streamhost host='24.24.24.1' jid='streamer.example.com' port='7625'/><streamhost host='2001:638:a000:4134::ffff:40' jid='streamer2.example.com' port='7625'/></query></iq>""",
 's5b_used': """<iq from='target@example.org/bar' id='hu3vax16' to='requester@example.com/foo' type='result'><query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46'><streamhost-used jid='streamer.example.com'/></query></iq>""",
 's5b_activate': """<iq from='requester@example.com/foo' id='moi7ts53' to='streamer.example.com' type='set'><query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46'><activate>target@example.org/bar</activate></query></iq>""",
 's5b_proxy_info': """<iq from='streamer.example.com' id='uj2c15z9' to='requester@example.com/foo' type='result'><query xmlns='http://jabber.org/protocol/bytestreams'><streamhost host='24.24.24.1' jid='streamer.example.com' port='7625'/></query></iq>""",
 'ibb_open': """<iq from='romeo@montague.net/orchard' id='jn3h8g65' to='juliet@capulet.com/balcony' type='set'><open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='i781hf64' stanza='iq'/></iq>""",
 'ibb_data': """<iq from='romeo@montague.net/orchard' id='kr91n475' to='juliet@capulet.com/balcony' type='set'><data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='i781hf64'>qANQR1DBwU4DX7jmYZnncmUQB/9KuKBddzQH+tZ1ZywKK0yHKnq57kWq+RFtQdCJWpdWpR0uQsuJe7+vh3NWn59/gTc5MDlX8dS9p0ovStmNcyLhxVgmqS8ZKhsblVeuIpQ0JgavABqibJolc3BKrVtVV1igKiX/N7Pi8RtY1K18toaMDhdEfhBRzO/XB0+PAQhYlRjNacGcslkhXqNjK5Va4tuOAPy2n1Q8UUrHbUd0g+xJ9Bm0G0LZXyvCWyKH kuNNxc8ycGCaqwS0=</data></iq>""",
 'ibb_close': """<iq from='romeo@montague.net/orchard' id='us71g45j' to='juliet@capulet.com/balcony' type='set'><close xmlns='http://jabber.org/protocol/ibb' sid='i781hf64'/></iq>""",
 'ibb_message': """<message from='romeo@montague.net/orchard' id='dsw71gj3' to='juliet@capulet.com/balcony'><data xmlns='http://jabber.org/protocol/ibb' seq='0' sid='ru71b6k4'>qANQR1DBwU4DX7jmYZnnfe32</data></message>""",
 'oob_iq': """<iq type='set' from='stpeter@jabber.org/work' to='MaineBoy@jabber.org/home' id='oob1'><query xmlns='jabber:iq:oob'><url>http://www.jabber.org/images/psa-license.jpg</url><desc>A license to Jabber!</desc></query></iq>""",
 'oob_x': """<message from='stpeter@jabber.org/work' to='MaineBoy@jabber.org/home'><body>Yeah, but do you have a license to Jabber?</body><x xmlns='jabber:x:oob'><url>https://www.jabber.org/images/psa-license.jpg</url><desc>A license to Jabber!</desc></x></message>""",
 'disco_info': """<iq type='result' from='plays.shakespeare.lit' to='romeo@montague.net/orchard' id='info1'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='conference' type='text' name='Play-Specific Chatrooms'/><identity category='directory' type='chatroom' name='Play-Specific Chatrooms'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/><feature var='jabber:iq:register'/></query></iq>""",
 'disco_items': """<iq type='result' from='catalog.shakespeare.lit' to='romeo@montague.net/orchard' id='items2'><query xmlns='http://jabber.org/protocol/disco#items'><item jid='catalog.shakespeare.lit' node='books' name='Books by and about Shakespeare'/><item jid='catalog.shakespeare.lit' node='clothing' name='Wear your literary taste with pride'/></query></iq>""",
 'upload_disco': """<iq from='upload.montague.tld' id='step_02' to='romeo@montague.tld/garden' type='result'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='store' type='file' name='HTTP File Upload' /><feature var='urn:xmpp:http:upload:0' /><x type='result' xmlns='jabber:x:data'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field><field var='max-file-size'><value>5242880</value></field></x></query></iq>""",
 'upload_slot': """<iq from='upload.montague.tld' id='step_03' to='romeo@montague.tld/garden' type='result'><slot xmlns='urn:xmpp:http:upload:0'><put url='https://upload.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg'><header name='Authorization'>Basic Base64String==</header><header name='Cookie'>foo=bar; user=romeo</header></put><get url='https://download.montague.tld/4a771ac1-f0b2-4a4a-9700-f2a26fa2bb67/tr%C3%A8s%20cool.jpg' /></slot></iq>""",
 'roster': """<iq id='bv1bs71f' to='juliet@example.com/chamber' type='result'><query xmlns='jabber:iq:roster' ver='ver11'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid='mercutio@example.com' name='Mercutio' subscription='from'/><item jid='benvolio@example.net' name='Benvolio' subscription='both' ask='subscribe'/></query></iq>""",
 'stanza_error': """<iq from='juliet@capulet.com/balcony' id='kr91n475' to='romeo@montague.net/orchard' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>no such stream</text></error></iq>""",
 'presence': """<presence from='juliet@example.com/balcony' xml:lang='en'><show>away</show><status>be right back</status><priority>0</priority></presence>""",
 'stream_error': """<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Replaced by new connection</text></stream:error>""",
 'deep': '<message>' + '<a>' * 60 + '</a>' * 60 + '</message>',
}

NEGOTIATION = [
 b"<features xmlns='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></features>",
 b"<features xmlns='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></features>",
 b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1ZzN2oscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==</challenge>",
 b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9</success>",
 b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>bad password</text></failure>",
 b"<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></features>",
 b"<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>",
]

def seed_doc_stanzas():
    try:
        text = open(SEED_DOC, encoding='utf-8').read()
    except OSError:
        return []
    out = []
    for m in re.finditer(r'<iq\b.*?(?:</iq>|/>)', text, re.S):
        s = re.sub(r'\s+', ' ', m.group(0))
        if s.endswith('/>') and '</iq>' not in s and not re.match(r'<iq[^>]*/>$', s):
            continue
        out.append(s.encode())
    return out

HERE = os.path.dirname(os.path.abspath(__file__))

def write(target, name, data):
    d = os.path.join(HERE, 'seeds', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

stanzas = {k: v.encode() for k, v in XEP.items()}
for i, s in enumerate(seed_doc_stanzas()):
    stanzas[f'seeddoc_{i:02}'] = s
for k, v in stanzas.items():
    write('stream', k, v)
    write('payloads', k, v)
for i, j in enumerate(['juliet@example.com', 'juliet@example.com/balcony', 'example.com', 'Σ@example.com/ï',
                       'a@b/c/d', '@example.com', 'user@[::1]', 'x' * 1100 + '@a']):
    write('jid', f'jid_{i}', j.encode())
# SOCKS5: a first byte that says where to split, then the peer's bytes.
dst = b'0123456789abcdef0123456789abcdef01234567'
connect = bytes([5, 1, 0, 3, len(dst)]) + dst + b'\x00\x00'
write('socks5', 'server_greeting_connect', bytes([3]) + bytes([5, 1, 0]) + connect)
write('socks5', 'client_replies', bytes([2]) + bytes([5, 0]) + bytes([5, 0, 0, 3, len(dst)]) + dst + b'\x00\x00')
write('socks5', 'refused', bytes([2]) + bytes([5, 0]) + bytes([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]))
# The state machines: op bytes as fuzzing.rs reads them.
write('receiver', 'accept_ibb', bytes([0x00, 0, 0x20, 0x10, 0x30, 0x02, 0x10, 0xb0, 0x40, 0x01, 0x00, 0xb0]))
write('receiver', 'accept_s5b', bytes([0x00, 0, 0x53, 1, 3, 0x70, 0x90]))
write('receiver', 'cancel', bytes([0x00, 0, 0xe0, 0xf9]))
write('sender', 'offer_s5b', bytes([0x06, 0x00, 0x60, 0x80, 0x07, 0x00, 0xc0]))
write('sender', 'offer_ibb', bytes([0x06, 0x02, 0x70, 0x04, 0x00, 0xd0, 0x80, 0x04, 0x00, 0xdf]))
write('negotiation', 'scram', b'\xff'.join([b''] + NEGOTIATION[1:3]))
write('negotiation', 'full', b'\xff'.join([b'', NEGOTIATION[1], NEGOTIATION[2], NEGOTIATION[3], b'', NEGOTIATION[5], NEGOTIATION[6]]))
write('negotiation', 'starttls', b'\xff'.join([b'', NEGOTIATION[0]]))
write('negotiation', 'failure', b'\xff'.join([b'', NEGOTIATION[1], NEGOTIATION[4]]))
