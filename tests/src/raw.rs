//! A raw XMPP client for hostile-input tests: a real account on the test server
//! (typically one that is not in anybody's roster) that writes whatever bytes a test
//! gives it, and reads stanzas back with the protocol core's stream parser.

use std::time::Duration;

use skiff_engine::connection::{connect, Connected, Transport};
use skiff_proto::stream::{StreamEvent, StreamParser};
use skiff_proto::xml::Element;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::peer::account;
use crate::Prosody;

/// A signed-in stream that sends raw text.
#[derive(Debug)]
pub struct RawClient {
    transport: Transport,
    parser: StreamParser,
    /// Our full JID.
    pub jid: String,
}

impl RawClient {
    /// Signs `user` in (resource `raw`) without sending presence.
    pub async fn connect(server: &Prosody, user: &str) -> RawClient {
        let cfg = account(server, user, "raw");
        let Connected { transport, parser, negotiated, .. } = connect(&cfg, None).await.expect("raw sign-in");
        RawClient { transport, parser, jid: negotiated.jid.to_string() }
    }

    /// Writes `xml` as it is.
    pub async fn send_raw(&mut self, xml: &str) {
        self.transport.write_all(xml.as_bytes()).await.expect("raw write");
        self.transport.flush().await.expect("raw flush");
    }

    /// The next stanza for which `pred` holds (others are skipped), within `timeout`.
    pub async fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Element) -> bool) -> Option<Element> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            while let Some(event) = self.parser.next_event().expect("the server's XML") {
                match event {
                    StreamEvent::Stanza(el) if pred(&el) => return Some(el),
                    StreamEvent::Close => panic!("the server closed the raw client's stream"),
                    _ => {}
                }
            }
            let n = match tokio::time::timeout_at(deadline, self.transport.read(&mut buf)).await {
                Ok(r) => r.expect("raw read"),
                Err(_) => return None,
            };
            assert!(n > 0, "the server closed the raw client's connection");
            self.parser.feed(&buf[..n]);
        }
    }

    /// Sends an XEP-0199 ping to `to` and waits for the answer; `Some(round trip)` when
    /// a result came within `timeout`.
    pub async fn ping(&mut self, to: &str, id: &str, timeout: Duration) -> Option<Duration> {
        let started = std::time::Instant::now();
        self.send_raw(&format!("<iq type='get' to='{to}' id='{id}'><ping xmlns='urn:xmpp:ping'/></iq>")).await;
        let answer = self.wait_for(timeout, |el| el.name == "iq" && el.attr("id") == Some(id)).await?;
        assert_eq!(answer.attr("type"), Some("result"), "ping answered with {}", answer.to_xml());
        Some(started.elapsed())
    }
}
