#!/usr/bin/env python3
"""Writes the seed corpora under seeds/TARGET/ (run from anywhere; the result is
committed). Three sources:
- example stanzas of the specifications: XEP-0096/0095, 0065, 0047, 0066, 0030, 0004,
  0363, 0115, RFC 6120/6121 (most of them as the specs print them);
- the stanzas of the seed document (../../shared/seed/, when present);
- the XML literals of each module's unit tests (crates/skiff-proto/src/MODULE.rs).
The byte-coded targets (socks5, transfer, negotiation) get hand-made sequences in the
format skiff_proto::fuzzing reads them."""
import os, re, struct

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, '..', 'crates', 'skiff-proto', 'src')
SEED_DOC = os.path.join(HERE, '..', '..', 'shared', 'seed', '000_04995213703e5849.txt')

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


MORE = {
 # XEP-0004
 'form_bot': """<x xmlns='jabber:x:data' type='form'><title>Bot Configuration</title><instructions>Fill out this form to configure your new bot!</instructions><field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field><field type='fixed'><value>Section 1: Bot Info</value></field><field type='text-single' label='The name of your bot' var='botname'/><field type='text-multi' label='Helpful description of your bot' var='description'/><field type='boolean' label='Public bot?' var='public'><required/></field><field type='text-private' label='Password for special access' var='password'/><field type='list-multi' label='What features will the bot support?' var='features'><option label='Contests'><value>contests</value></option><option label='News'><value>news</value></option><option label='Polls'><value>polls</value></option><value>news</value><value>search</value></field><field type='list-single' label='Maximum number of subscribers' var='maxsubs'><value>20</value><option label='10'><value>10</value></option><option label='None'><value>none</value></option></field><field type='jid-multi' label='People to invite' var='invitelist'><desc>Tell all your friends about your new bot!</desc></field></x>""",
 'form_submit': """<x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field><field type='text-single' var='botname'><value>The Jabber Google Bot</value></field><field type='text-multi' var='description'><value>This bot enables you to send notifications to Google.</value><value>Please use responsibly.</value></field><field type='boolean' var='public'><value>0</value></field><field type='text-private' var='password'><value>v3r0na</value></field><field type='jid-multi' var='invitelist'><value>juliet@capulet.com</value><value>benvolio@montague.net</value></field></x>""",
 'form_result': """<x type='result' xmlns='jabber:x:data'><title>Search Results</title><reported><field var='name'/><field var='url'/></reported><item><field var='name'><value>Comune di Verona</value></field><field var='url'><value>http://www.comune.verona.it/</value></field></item></x>""",
 'form_cancel': """<x xmlns='jabber:x:data' type='cancel'/>""",
 # RFC 6121
 'roster_get': """<iq from='juliet@example.com/balcony' id='bv1bs71f' type='get'><query xmlns='jabber:iq:roster'/></iq>""",
 'roster_push': """<iq id='a78b4q6ha463' to='juliet@example.com/chamber' type='set'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com'/></query></iq>""",
 'roster_remove': """<iq from='juliet@example.com/balcony' id='hm4hs97y' type='set'><query xmlns='jabber:iq:roster'><item jid='nurse@example.com' subscription='remove'/></query></iq>""",
 'presence_subscribe': """<presence id='xk3h1v69' to='juliet@example.com' type='subscribe'/>""",
 'presence_unavailable': """<presence from='romeo@example.net/orchard' type='unavailable' xml:lang='en'><status>gone home</status></presence>""",
 # RFC 6120
 'message_chat': """<message from='juliet@im.example.com/balcony' id='ju2ba41c' to='romeo@example.net' type='chat' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body></message>""",
 'message_error': """<message from='romeo@example.net' to='juliet@im.example.com/balcony' type='error'><error type='modify' by='example.net'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xmpp:romeo@afterwords.example.net</gone></error></message>""",
 'iq_unavailable': """<iq from='juliet@im.example.com' id='zj3v142b' to='romeo@example.net' type='error'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>""",
 'bind': """<iq id='yhc13a95' type='set'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>""",
 'stream_error_host': """<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>""",
 'stream_error_see_other': """<stream:error xmlns:stream='http://etherx.jabber.org/streams'><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:41D0:1:A49b::1]:9222</see-other-host></stream:error>""",
 'stream_error_app': """<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Some special application diagnostic information!</text><escape-your-data xmlns='http://example.org/ns'/></stream:error>""",
 # XEP-0030
 'disco_info_get': """<iq type='get' from='romeo@montague.net/orchard' to='plays.shakespeare.lit' id='info1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>""",
 'disco_items_node': """<iq type='get' from='romeo@montague.net/orchard' to='catalog.shakespeare.lit' id='items3'><query xmlns='http://jabber.org/protocol/disco#items' node='music'/></iq>""",
 'disco_info_error': """<iq type='error' from='plays.shakespeare.lit' to='romeo@montague.net/orchard' id='info1'><query xmlns='http://jabber.org/protocol/disco#info'/><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>""",
 # XEP-0066
 'oob_result': """<iq type='result' from='MaineBoy@jabber.org/home' to='stpeter@jabber.org/work' id='oob1'/>""",
 'oob_reject': """<iq type='error' from='MaineBoy@jabber.org/home' to='stpeter@jabber.org/work' id='oob1'><query xmlns='jabber:iq:oob'><url>http://www.jabber.org/images/psa-license.jpg</url><desc>A license to Jabber!</desc></query><error code='406' type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>""",
 # XEP-0363
 'upload_request': """<iq from='romeo@montague.tld/garden' id='step_03' to='upload.montague.tld' type='get'><request xmlns='urn:xmpp:http:upload:0' filename='tr\u00e8s cool.jpg' size='23456' content-type='image/jpeg' /></iq>""",
 'upload_too_large': """<iq from='upload.montague.tld' id='step_03' to='romeo@montague.tld/garden' type='error'><request xmlns='urn:xmpp:http:upload:0' filename='tr\u00e8s cool.jpg' size='23456' content-type='image/jpeg' /><error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' /><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>File too large. The maximum file size is 20000 bytes</text><file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>20000</max-file-size></file-too-large></error></iq>""",
 # XEP-0047
 'ibb_open_message': """<iq from='romeo@montague.net/orchard' id='jn3h8g65' to='juliet@capulet.com/balcony' type='set'><open xmlns='http://jabber.org/protocol/ibb' block-size='4096' sid='i781hf64' stanza='message'/></iq>""",
 'ibb_smaller': """<iq from='juliet@capulet.com/balcony' id='jn3h8g65' to='romeo@montague.net/orchard' type='error'><error type='modify'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>""",
 # XEP-0065
 's5b_proxy_get': """<iq from='requester@example.com/foo' id='uj2c15z9' to='streamer.example.com' type='get'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>""",
 's5b_udp': """<iq from='requester@example.com/foo' id='hu3vax16' to='target@example.org/bar' type='set'><query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46' mode='udp'><streamhost host='24.24.24.1' jid='requester@example.com/foo' port='5086'/></query></iq>""",
 's5b_none': """<iq from='target@example.org/bar' id='hu3vax16' to='requester@example.com/foo' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>""",
 # XEP-0095/0096
 'si_no_valid_streams': """<iq type='error' id='offer1' to='sender@jabber.org/resource'><error code='400' type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><no-valid-streams xmlns='http://jabber.org/protocol/si'/></error></iq>""",
 'si_bad_profile': """<iq type='error' id='offer1' to='sender@jabber.org/resource'><error code='400' type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><bad-profile xmlns='http://jabber.org/protocol/si'/></error></iq>""",
 'si_declined': """<iq type='error' id='offer1' to='sender@jabber.org/resource'><error code='403' type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>Offer Declined</text></error></iq>""",
 'si_accept_ibb': """<iq type='result' to='sender@jabber.org/resource' id='offer1'><si xmlns='http://jabber.org/protocol/si'><feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='submit'><field var='stream-method'><value>http://jabber.org/protocol/ibb</value></field></x></feature></si></iq>""",
}

XEP.update(MORE)
XEP.update({
 # XEP-0300 Example 1, and Skiff's checksum after the data (and its announcement).
 'hash_xep0300': """<hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>2XarmwTlNxDAMkvymloX3S5+VbylNrJt/l5QyPa+YoU=</hash>""",
 'hash_checksum': """<iq type='set' id='c1' to='bob@example.com/skiff' from='alice@example.com/skiff'><checksum xmlns='urn:x-skiff:si-checksum:0' sid='s1'><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></checksum></iq>""",
 'batch_manifest': """<iq type='set' id='b1-1' to='receiver@jabber.org/resource' from='sender@jabber.org/resource'><batch xmlns='urn:x-skiff:batch:0' id='b1' name='photos' files='3' size='30'><file path='2024/a.jpg' size='10' sha256='2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'/><file path='2023/a.jpg' size='10'/><file path='empty/zero.txt' size='10'/></batch></iq>""",
 'batch_in': """<iq type='set' id='offer3' to='receiver@jabber.org/resource' from='sender@jabber.org/resource'><si xmlns='http://jabber.org/protocol/si' id='a3' profile='http://jabber.org/protocol/si/profile/file-transfer'><file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='a.jpg' size='10'><range/></file><in-batch xmlns='urn:x-skiff:batch:0' id='b1' first='0' count='2'/></si></iq>""",
 'batch_received': """<iq type='result' id='b1-1' to='sender@jabber.org/resource' from='receiver@jabber.org/resource'><received xmlns='urn:x-skiff:batch:0' id='b1'><have first='0' count='2'/><have first='5' count='1'/></received></iq>""",
# XEP-0234 example 1 and 9, XEP-0260 examples 1, 5, 7, XEP-0261 example 1; a checksum,
 # a received and a transport-replace to IBB as XEP-0234 and XEP-0260 describe them.
 'jingle_ft_offer': """<iq from='romeo@montague.example/dr4hcr0st3lup4c' id='nzu25s8' to='juliet@capulet.example/yn0cl4bnw0yr3vym' type='set'> <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.example/dr4hcr0st3lup4c' sid='851ba2'> <content creator='initiator' name='a-file-offer' senders='initiator'> <description xmlns='urn:xmpp:jingle:apps:file-transfer:5'> <file> <date>1969-07-21T02:56:15Z</date> <desc>This is a test. If this were a real file...</desc> <media-type>text/plain</media-type> <name>test.txt</name> <range/> <size>6144</size> <hash xmlns='urn:xmpp:hashes:2' algo='sha-1'>w0mcJylzCn+AfvuGdqkty2+KP48=</hash> </file> </description> <transport xmlns='urn:xmpp:jingle:transports:s5b:1' mode='tcp' sid='vj3hs98y'> <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5086' priority='8257636' type='direct'/> <candidate cid='hutr46fe' host='24.24.24.1' jid='romeo@montague.example/dr4hcr0st3lup4c' port='5087' priority='8258636' type='direct'/> </transport> </content> </jingle> </iq>""",
 'jingle_s5b_initiate': """<iq from='romeo@montague.lit/orchard' id='xn28s7gk' to='juliet@capulet.lit/balcony' type='set'> <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'> <content creator='initiator' name='ex'> <description xmlns='urn:xmpp:example'/> <transport xmlns='urn:xmpp:jingle:transports:s5b:1' dstaddr='972b7bf47291ca609517f67f86b5081086052dad' mode='tcp' sid='vj3hs98y'> <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.lit/orchard' port='5086' priority='8257636' type='direct'/> <candidate cid='hutr46fe' host='24.24.24.1' jid='romeo@montague.lit/orchard' port='5087' priority='8258636' type='direct'/> <candidate cid='xmdh4b7i' host='123.456.7.8' jid='streamer.shakespeare.lit' port='7625' priority='7878787' type='proxy'/> </transport> </content> </jingle> </iq>""",
 'jingle_s5b_used': """<iq from='romeo@montague.lit/orchard' id='hjdi8' to='juliet@capulet.lit/balcony' type='set'> <jingle xmlns='urn:xmpp:jingle:1' action='transport-info' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'> <content creator='initiator' name='ex'> <transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'> <candidate-used cid='hr65dqyd'/> </transport> </content> </jingle> </iq>""",
 'jingle_s5b_error': """<iq from='juliet@capulet.lit/balcony' id='gft65ewd' to='romeo@montague.lit/orchard' type='set'> <jingle xmlns='urn:xmpp:jingle:1' action='transport-info' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'> <content creator='initiator' name='ex'> <transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'> <candidate-error/> </transport> </content> </jingle> </iq>""",
 'jingle_ibb_initiate': """<iq from='romeo@montague.lit/orchard' id='xn28s7gk' to='juliet@capulet.lit/balcony' type='set'> <jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' initiator='romeo@montague.lit/orchard' sid='a73sjjvkla37jfea'> <content creator='initiator' name='ex'> <description xmlns='urn:xmpp:example'/> <transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='ch3d9s71'/> </content> </jingle> </iq>""",
 'jingle_terminate': """<iq from='juliet@capulet.example/yn0cl4bnw0yr3vym' id='jp2ba614' to='romeo@montague.example/dr4hcr0st3lup4c' type='set'> <jingle xmlns='urn:xmpp:jingle:1' action='session-terminate' sid='a73sjjvkla37jfea'> <reason> <cancel /> </reason> </jingle> </iq>""",
 'jingle_checksum': """<iq type='set' id='ck1' to='juliet@capulet.example/yn0cl4bnw0yr3vym' from='romeo@montague.example/dr4hcr0st3lup4c'><jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='851ba2'><checksum xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='a-file-offer'><file><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash></file></checksum></jingle></iq>""",
 'jingle_received': """<iq type='set' id='rc1' to='romeo@montague.example/dr4hcr0st3lup4c' from='juliet@capulet.example/yn0cl4bnw0yr3vym'><jingle xmlns='urn:xmpp:jingle:1' action='session-info' sid='851ba2'><received xmlns='urn:xmpp:jingle:apps:file-transfer:5' creator='initiator' name='a-file-offer'/></jingle></iq>""",
 'jingle_replace_ibb': """<iq type='set' id='tr1' to='juliet@capulet.lit/balcony' from='romeo@montague.lit/orchard'><jingle xmlns='urn:xmpp:jingle:1' action='transport-replace' sid='a73sjjvkla37jfea'><content creator='initiator' name='ex'><transport xmlns='urn:xmpp:jingle:transports:ibb:1' block-size='4096' sid='ch3d9s71'/></content></jingle></iq>""",
 'hash_offer': """<iq type='set' id='offer2' to='receiver@jabber.org/resource' from='sender@jabber.org/resource'><si xmlns='http://jabber.org/protocol/si' id='a1' profile='http://jabber.org/protocol/si/profile/file-transfer'><file xmlns='http://jabber.org/protocol/si/profile/file-transfer' name='test.txt' size='1022'><hash xmlns='urn:xmpp:hashes:2' algo='sha-256'>47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</hash><checksum-follows xmlns='urn:x-skiff:si-checksum:0' algo='sha-256'/><range/></file><feature xmlns='http://jabber.org/protocol/feature-neg'><x xmlns='jabber:x:data' type='form'><field var='stream-method' type='list-single'><option><value>http://jabber.org/protocol/bytestreams</value></option></field></x></feature></si></iq>""",
})

# XEP-0115 §1.2, §5.2, §5.3, §6.1 and §6.3 (presences, the disco#info exchange, the
# stream feature), and sequences of them for the cache target (the elements of one
# document, in order): Romeo and the Nurse on one ver, answered, the Nurse gone; a
# stranger first on that ver with a bogus answer, an error, the Nurse's good answer;
# Benvolio answered, gone and back.
XEP.update({
 'caps_presence_romeo': """<presence from='romeo@montague.lit/orchard'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>""",
 'caps_presence_benvolio': """<presence from='benvolio@capulet.lit/230193'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>""",
 'caps_presence_bard': """<presence from='bard@shakespeare.lit/globe'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://www.chatopus.com' ver='zHyEOgxTrkpSdGcQKH8EFPLsriY='/></presence>""",
 'caps_presence_recomputed': """<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='66/0NaeaBKkwk85efJTGmU47vXI='/></presence>""",
 'caps_c': """<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/>""",
 'caps_disco_get': """<iq from='juliet@capulet.lit/balcony' id='disco1' to='romeo@montague.lit/orchard' type='get'><query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='/></iq>""",
 'caps_result_exodus': """<iq from='romeo@montague.lit/orchard' id='disco1' to='juliet@capulet.lit/chamber' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='><identity category='client' name='Exodus 0.9.1' type='pc'/><feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query></iq>""",
 'caps_result_psi': """<iq from='benvolio@capulet.lit/230193' id='disco1' to='juliet@capulet.lit/chamber' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='><identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/><identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/><feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field><field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field><field var='os'><value>Mac</value></field><field var='os_version'><value>10.5.1</value></field><field var='software'><value>Psi</value></field><field var='software_version'><value>0.11</value></field></x></query></iq>""",
 'caps_stream_feature': """<stream:features xmlns:stream='http://etherx.jabber.org/streams'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://jabberd.org' ver='ItBTI0XLDFvVxZ72NQElAzKS9sU='/></stream:features>""",
 'caps_seq_shared': """<log><presence from='romeo@montague.lit/orchard'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence><presence from='nurse@capulet.lit/chamber'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence><iq from='romeo@montague.lit/orchard' id='disco1' to='juliet@capulet.lit/chamber' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='><identity category='client' name='Exodus 0.9.1' type='pc'/><feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query></iq><presence from='nurse@capulet.lit/chamber'></presence><presence from='nurse@capulet.lit/chamber' type='unavailable'></presence></log>""",
 'caps_seq_stranger': """<log><presence from='mallory@evil.example/x'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence><presence from='romeo@montague.lit/orchard'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence><presence from='nurse@capulet.lit/chamber'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence><iq from='mallory@evil.example/x' id='disco2' to='juliet@capulet.lit/chamber' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='><identity category='client' type='pc'/><feature var='http://jabber.org/protocol/si/profile/file-transfer'/></query></iq><iq from='romeo@montague.lit/orchard' id='disco3' to='juliet@capulet.lit/chamber' type='error'><query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='/><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq><iq from='nurse@capulet.lit/chamber' id='disco1' to='juliet@capulet.lit/chamber' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='><identity category='client' name='Exodus 0.9.1' type='pc'/><feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/></query></iq><presence from='mallory@evil.example/x'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence></log>""",
 'caps_seq_psi': """<log><presence from='benvolio@capulet.lit/230193'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence><iq from='benvolio@capulet.lit/230193' id='disco1' to='juliet@capulet.lit/chamber' type='result'><query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='><identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/><identity xml:lang='el' category='client' name='&#936; 0.11' type='pc'/><feature var='http://jabber.org/protocol/caps'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='http://jabber.org/protocol/muc'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field><field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field><field var='os'><value>Mac</value></field><field var='os_version'><value>10.5.1</value></field><field var='software'><value>Psi</value></field><field var='software_version'><value>0.11</value></field></x></query></iq><presence from='benvolio@capulet.lit/230193' type='unavailable'></presence><presence from='benvolio@capulet.lit/230193'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://psi-im.org' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence></log>""",
})

# Which examples go to which payload target (every XML target also gets the seed
# document's stanzas; the stream target gets everything).
PICK = {
 'si': ['si_', 'hash_offer'], 'bytestreams': ['s5b_'], 'ibb': ['ibb_'], 'oob': ['oob_'],
 'disco': ['disco_', 'upload_disco'], 'dataforms': ['form_', 'si_offer', 'si_accept', 'upload_disco'],
 'upload': ['upload_'], 'roster': ['roster'], 'stanza': ['presence', 'message', 'iq_', 'stanza_error', 'bind', 'si_no', 'si_declined', 'ibb_smaller', 'roster'],
 'stream_error': ['stream_error'],
 'hashes': ['hash_'],
 'batch': ['batch_'],
 'jingle': ['jingle_'],
 'caps': ['caps_', 'disco_info', 'upload_disco'],
}

NEGOTIATION = [
 b"<features xmlns='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></features>",
 b"<features xmlns='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></features>",
 # RFC 6120 / RFC 5802 example exchange (user, pencil).
 b"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1ZzN2oscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==</challenge>",
 b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9</success>",
 b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/><text>bad password</text></failure>",
 b"<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></features>",
 b"<iq xmlns='jabber:client' id='bind-1' type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.com/skiff</jid></bind></iq>",
 b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
 b"<features xmlns='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></features>",
 b"<iq xmlns='jabber:client' id='session-1' type='result'/>",
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


def unit_literals(module):
    """The XML string literals of a module's unit tests."""
    tests = ''
    # A module is `name.rs` or `name/mod.rs`, its tests inline or in `name/tests.rs`.
    for path in [module + '.rs', os.path.join(module, 'mod.rs')]:
        try:
            text = open(os.path.join(SRC, path), encoding='utf-8').read()
        except OSError:
            continue
        tests += text[text.find('#[cfg(test)]'):] if '#[cfg(test)]' in text else ''
    try:
        tests += open(os.path.join(SRC, module, 'tests.rs'), encoding='utf-8').read()
    except OSError:
        pass
    out = []
    for m in re.finditer(r'r(#*)"(<.*?)"\1', tests, re.S):
        out.append(m.group(2))
    for m in re.finditer(r'(?<![r#])"(<(?:[^"\\]|\\.)*)"', tests, re.S):
        s = re.sub(r'\\\n\s*', '', m.group(1))
        s = s.replace('\\"', '"').replace('\\n', '\n').replace('\\t', '\t').replace('\\\\', '\\')
        out.append(s)
    return [s.encode() for s in out if '{' not in s and len(s) > 3]


def write(target, name, data):
    d = os.path.join(HERE, 'seeds', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


stanzas = {k: v.encode() for k, v in XEP.items()}
doc = {f'seeddoc_{i:02}': s for i, s in enumerate(seed_doc_stanzas())}
for k, v in {**stanzas, **doc}.items():
    write('stream', k, v)
for target, prefixes in PICK.items():
    for k, v in stanzas.items():
        if any(k.startswith(p) for p in prefixes):
            write(target, k, v)
    for k, v in doc.items():
        write(target, k, v)
    for i, v in enumerate(unit_literals(target)):
        write(target, f'unit_{i:02}', v)
for i, v in enumerate(unit_literals('stream')):
    write('stream', f'unit_{i:02}', v)

for i, j in enumerate(['juliet@example.com', 'juliet@example.com/balcony', 'example.com', '\u03a3@example.com/\u00ef',
                       'a@b/c/d', '@example.com', 'user@[::1]', 'x' * 1100 + '@a', 'Alice@Example.COM./Phone',
                       'romeo@example.net/orchard', 'user@192.0.2.1', 'juliet@example.com/foo bar',
                       'nurse@example.com/\u2126']):
    write('jid', f'jid_{i:02}', j.encode())

# SOCKS5: four bytes that pick the chunk sizes (the first also picks the client's
# DST.ADDR: below 0x80 the usual hash), then the peer's bytes.
dst = b'0123456789abcdef0123456789abcdef01234567'
connect = bytes([5, 1, 0, 3, len(dst)]) + dst + b'\x00\x00'
write('socks5', 'server_greeting_connect', bytes([3, 1, 7, 2]) + bytes([5, 1, 0]) + connect)
write('socks5', 'server_ipv4', bytes([1, 1, 1, 1]) + bytes([5, 2, 0, 2]) + bytes([5, 1, 0, 1, 127, 0, 0, 1, 0x1e, 0x61]))
write('socks5', 'server_ipv6_bind', bytes([5, 5, 5, 5]) + bytes([5, 1, 0]) + bytes([5, 2, 0, 4]) + bytes(16) + b'\x00\x50')
write('socks5', 'server_auth_only', bytes([0, 0, 0, 0]) + bytes([5, 1, 2]))
write('socks5', 'client_replies', bytes([2, 3, 4, 5]) + bytes([5, 0]) + bytes([5, 0, 0, 3, len(dst)]) + dst + b'\x00\x00' + b'DATA')
write('socks5', 'client_unspecified', bytes([9, 9, 9, 9]) + bytes([5, 0]) + bytes([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]))
write('socks5', 'client_refused', bytes([2, 2, 2, 2]) + bytes([5, 0]) + bytes([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]))
write('socks5', 'client_no_method', bytes([1, 1, 1, 1]) + bytes([5, 0xff]))

# Transfers: [0 = sender | 1 = receiver], size (u16 LE), flags, block size (u16 LE),
# then inputs as skiff_proto::fuzzing::transfer reads them.
def transfer(which, size, flags, block, ops):
    return bytes([which]) + struct.pack('<H', size) + bytes([flags]) + struct.pack('<H', block) + bytes(ops)

# Sender, SOCKS5 direct: accept (bytestreams), streamhosts (ours), used = us, connected, done.
write('transfer', 'sender_s5b_direct', transfer(0, 1000, 4, 0, [2, 0, 2, 0, 0, 9, 1, 3, 0, 2, 0, 10, 14, 0]))
# Sender, SOCKS5 through the proxy: used = proxy, proxy connected, activate answered, done.
write('transfer', 'sender_s5b_proxy', transfer(0, 1000, 4, 0, [2, 0, 2, 0, 0, 9, 2, 3, 0, 2, 1, 12, 0, 0, 2, 14, 0]))
# Sender, in-band: accept (ibb), open answered, blocks read and acknowledged, close answered.
ibb = [2, 0, 2, 1, 0, 0, 0, 2]
for _ in range(8):
    ibb += [15, 3, 0, 0, 2]
write('transfer', 'sender_ibb', transfer(0, 100, 2, 0, ibb + [0, 0, 2, 0, 0, 2]))
# Sender: declined, a step-down (resource-constraint), a timeout, a cancel.
write('transfer', 'sender_declined', transfer(0, 10, 0, 0, [4, 0, 2, 3, 0]))
write('transfer', 'sender_step_down', transfer(0, 5000, 2 | 0x20, 4000, [2, 0, 2, 1, 0, 4, 0, 2, 1, 0, 0, 0, 2, 15, 3, 0, 0, 2, 18, 0, 18, 0]))
write('transfer', 'sender_cancel', transfer(0, 10, 0, 0, [2, 0, 2, 0, 0, 17, 18, 0]))
# Receiver, in-band: accept, open, blocks in turn, written, close.
write('transfer', 'receiver_ibb', transfer(1, 96, 2, 4096, [0, 0, 2, 0, 1, 2, 1, 3, 2, 12, 1, 2, 2, 13, 6, 1, 2, 3]))
write('transfer', 'receiver_ibb_overrun', transfer(1, 400, 2, 4096, [0, 0, 2, 0, 1, 2, 1] + [3, 2, 6, 1, 2, 2, 13] * 9 + [6, 1, 2, 3]))
# Receiver, SOCKS5: accept, streamhosts, connected, socket done.
write('transfer', 'receiver_s5b', transfer(1, 1000, 4, 4096, [0, 0, 7, 2, 1, 2, 5, 10, 0, 12, 0]))
write('transfer', 'receiver_s5b_fallback', transfer(1, 1000, 0, 4096, [0, 1, 7, 2, 1, 2, 5, 11, 2, 0, 1, 2, 1, 3, 2, 20, 1, 2, 2, 13, 17, 0]))
write('transfer', 'receiver_reject', transfer(1, 10, 0, 4096, [1, 6, 1, 2, 3]))
write('transfer', 'receiver_resume', transfer(1, 1000, 5, 4096, [0, 1, 7, 1, 1, 2, 5, 10, 0, 12, 2]))
write('transfer', 'receiver_timeout', transfer(1, 10, 0, 4096, [17, 0, 17, 0, 2, 0, 1, 2, 1]))
write('transfer', 'receiver_refused', transfer(1, 10, 6, 4096, []))

# Jingle sessions (skiff_proto::fuzzing::jingle_session): the first byte is the flags
# (1 receiver, 2 in-band only, 4 ranges, 8 hash in the offer), then the size and the
# in-band block size (little-endian), then operations (see the target).
def jsession(flags, size, block, ops):
    return bytes([flags]) + struct.pack('<H', size) + struct.pack('<H', block) + bytes(ops)
# Sender, SOCKS5: candidates, the offer acked, accepted with one candidate, ours used
# by the receiver (it has the higher priority), its connection arrived, data, the
# checksum, success.
write('jingle_session', 'sender_s5b', jsession(0, 1000, 0, [14, 1, 0, 0, 2, 6, 1, 1, 1, 1, 0x00, 0x10, 0, 0, 0, 1,
    15, 1, 7, 1, 1, 1, 0, 1, 16, 0, 17, 0, 19, 0, 11, 1, 1, 1, 0, 1]))
# Receiver, SOCKS5: accepted, candidates, the sender's connected, its candidate-error,
# data, the checksum, verified.
write('jingle_session', 'receiver_s5b', jsession(1, 1000, 0, [20, 1, 0, 0, 14, 1, 15, 1, 8, 1, 1, 1, 0, 1,
    17, 0, 10, 1, 1, 1, 0, 1, 19, 2, 0]))
# Receiver, in-band: accepted, open, one block, written, close, no checksum (the
# wait), verified.
write('jingle_session', 'receiver_ibb', jsession(3, 100, 4096, [20, 1, 0, 0, 12, 0, 0, 0x00, 0x10,
    12, 0, 1, 100, 0, 0, 0, 18, 1, 12, 0, 2, 22, 0, 19, 2, 0]))

# Negotiation: the first byte picks the TLS policy (0 direct, 1 STARTTLS, 2 none; 4
# adds "SCRAM required"), then pieces separated by 0xff (empty: a stream header).
N = NEGOTIATION
def neg(policy, pieces):
    return bytes([policy]) + b'\xff'.join(pieces)
write('negotiation', 'scram', neg(0, [b'', N[1], N[2], N[3], b'', N[5], N[6]]))
write('negotiation', 'starttls', neg(1, [b'', N[0], N[7], b'', N[1], N[2], N[3], b'', N[5], N[6], N[9]]))
write('negotiation', 'failure', neg(0, [b'', N[1], N[4]]))
write('negotiation', 'plain_only', neg(4, [b'', N[8]]))
write('negotiation', 'plain', neg(0, [b'', N[8], N[3], b'', N[5], N[6], N[9]]))
write('negotiation', 'closed', neg(2, [b'', N[1], b'\xfe']))
# XEP-0198 resumption instead of binding (policy bit 8), after PLAIN over direct TLS:
# resumed, and refused (then a resource is bound).
SM_FEATURES = b"<features xmlns='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></features>"
write('negotiation', 'resume', neg(8, [b'', N[8], N[3], b'', SM_FEATURES, b"<resumed xmlns='urn:xmpp:sm:3' h='2' previd='sm-1'/>"]))
write('negotiation', 'resume_failed', neg(8, [b'', N[8], N[3], b'', SM_FEATURES,
    b"<failed xmlns='urn:xmpp:sm:3' h='1'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>", N[6]]))

# Stream management: mode 0 = elements (the XEP's examples), mode 1 = operations (see
# skiff_proto::fuzzing::sm: 0 enable, 1 a stanza sent, 2 a non-stanza, 3 one received,
# 4 <enabled/>, 5 an ack of n more, 6 an ack of any h, 7 <r/>, 8 <failed/>, 9 an ack
# request, 10 a drop and resumption, 11 a failed resumption).
write('sm', 'elements', b'\x00' + b"<x><enable xmlns='urn:xmpp:sm:3' resume='true'/><enabled xmlns='urn:xmpp:sm:3' id='some-long-sm-id' resume='true' max='600'/><resume xmlns='urn:xmpp:sm:3' h='5' previd='some-long-sm-id'/><resumed xmlns='urn:xmpp:sm:3' h='3' previd='some-long-sm-id'/><failed xmlns='urn:xmpp:sm:3' h='7'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='4294967295'/></x>")
write('sm', 'session', bytes([1, 0, 1, 1, 4, 1, 1, 5, 1, 3, 7, 10, 2, 5, 3, 1, 1, 9, 1, 6, 0, 16, 11, 1, 0]))
write('sm', 'resume_twice', bytes([1, 0, 4, 1, 1, 1, 10, 1, 5, 1, 10, 0, 1, 1, 10, 0, 5, 0, 10, 3]))
