//! The SASL step of negotiation: the mechanism choice (SCRAM-PLUS, SCRAM, PLAIN only
//! over TLS and never after SCRAM), and the checks on what the server sends before any
//! costly work (its nonce extends ours, a sane iteration count).

use super::*;

impl Negotiator {
    pub(super) fn start_sasl(&mut self, features: &Element) -> Result<Vec<Action>, NegotiationError> {
        let offered: Vec<String> = features
            .child("mechanisms", ns::SASL)
            .map(|m| m.children_named("mechanism", ns::SASL).map(|e| e.text().trim().to_owned()).collect())
            .unwrap_or_default();
        let has = |m: &str| offered.iter().any(|o| o == m);
        let user = self.jid.local().unwrap_or_default().to_owned();
        // Channel binding only ever over TLS, and only with a type the server takes
        // (XEP-0440; without that list, RFC 9266 makes tls-exporter the TLS 1.3 default).
        let binding = self.binding.as_ref().filter(|_| self.tls);
        let server_cb_types: Option<Vec<String>> = features.child("sasl-channel-binding", NS_SASL_CB).map(|l| {
            l.children_named("channel-binding", NS_SASL_CB).filter_map(|c| c.attr("type")).map(str::to_owned).collect()
        });
        let usable = binding.filter(|b| server_cb_types.as_ref().is_none_or(|t| t.iter().any(|t| t == b.kind())));
        let offers_plus = offered.iter().any(|m| m.starts_with("SCRAM-") && m.ends_with("-PLUS"));
        // RFC 5802 §6, GS2 flag without binding: "y" = we could bind but the server
        // shows no -PLUS (a server that can bind then knows -PLUS was stripped); "n" =
        // we cannot bind, or not with any type this server offers.
        let unbound =
            if binding.is_some() && !offers_plus { ChannelBinding::Unsupported } else { ChannelBinding::None };
        let creds = |cb: ChannelBinding| {
            Credentials::default()
                .with_username(user.clone())
                .with_password(self.password.clone())
                .with_channel_binding(cb)
        };
        let sasl_err = |e: ::sasl::client::MechanismError| NegotiationError::Sasl(e.to_string());
        let mech: Box<dyn Mechanism + Send> = if let (Some(b), true) = (usable, has("SCRAM-SHA-256-PLUS")) {
            Box::new(Scram::<Sha256>::from_credentials(creds(b.to_sasl())).map_err(sasl_err)?)
        } else if let (Some(b), true) = (usable, has("SCRAM-SHA-1-PLUS")) {
            Box::new(Scram::<Sha1>::from_credentials(creds(b.to_sasl())).map_err(sasl_err)?)
        } else if has("SCRAM-SHA-256") {
            Box::new(Scram::<Sha256>::from_credentials(creds(unbound)).map_err(sasl_err)?)
        } else if has("SCRAM-SHA-1") {
            Box::new(Scram::<Sha1>::from_credentials(creds(unbound)).map_err(sasl_err)?)
        } else if has("PLAIN") && self.tls && self.require_scram {
            return Err(NegotiationError::PlainDowngrade);
        } else if has("PLAIN") && self.tls {
            Box::new(Plain::new(user, self.password.clone()))
        } else {
            return Err(NegotiationError::NoMechanism(if offered.is_empty() {
                "none".into()
            } else {
                offered.join(", ")
            }));
        };
        let mut mech = mech;
        self.mech_name = mech.name().to_owned();
        let initial = mech.initial();
        self.client_nonce = self.mech_name.starts_with("SCRAM-").then(|| scram_attr(&initial, 'r')).flatten();
        self.mech = Some(mech);
        self.state = State::Sasl;
        let auth =
            Element::new("auth", ns::SASL).with_attr("mechanism", self.mech_name.clone()).with_text(encode(&initial));
        Ok(vec![Action::Send(auth)])
    }

    pub(super) fn on_sasl(&mut self, el: &Element) -> Result<Vec<Action>, NegotiationError> {
        let mech = self.mech.as_mut().ok_or_else(|| NegotiationError::Unexpected("SASL without a mechanism".into()))?;
        match el.name.as_str() {
            "challenge" if self.client_nonce.is_some() && self.answered_first => {
                // RFC 6120 §6.4.3: the server-final message may come as a challenge; it
                // is verified now and answered with an empty response.
                if self.server_verified {
                    return Err(NegotiationError::Unexpected("a third SCRAM challenge".into()));
                }
                mech.success(&decode(&el.text())?).map_err(proof_error)?;
                self.server_verified = true;
                Ok(vec![Action::Send(Element::new("response", ns::SASL))])
            }
            "challenge" => {
                let data = decode(&el.text())?;
                if let Some(ours) = &self.client_nonce {
                    check_server_first(ours, &data)?;
                    self.answered_first = true;
                }
                let resp = mech.response(&data).map_err(|e| NegotiationError::Sasl(e.to_string()))?;
                Ok(vec![Action::Send(Element::new("response", ns::SASL).with_text(encode(&resp)))])
            }
            "success" => {
                let data = decode(&el.text())?;
                if self.client_nonce.is_some() && !self.answered_first {
                    return Err(NegotiationError::ServerProofInvalid);
                }
                // Verified already (server-final came as a challenge): nothing more may
                // follow in the success.
                if self.server_verified {
                    if !data.is_empty() {
                        return Err(NegotiationError::Unexpected("SCRAM data after the server's proof".into()));
                    }
                } else {
                    mech.success(&data).map_err(proof_error)?;
                }
                self.mech = None;
                self.authenticated = true;
                self.state = State::AwaitHeader;
                Ok(vec![Action::RestartStream])
            }
            "failure" => {
                let condition = el
                    .elements()
                    .find(|e| e.name != "text")
                    .map(|e| e.name.clone())
                    .unwrap_or_else(|| "not-authorized".into());
                let text = el.child_text("text", ns::SASL).filter(|t| !t.is_empty());
                Err(NegotiationError::AuthFailed { jid: self.jid.to_string(), condition, text })
            }
            other => Err(NegotiationError::Unexpected(format!("SASL <{other}/>"))),
        }
    }
}

pub(super) fn proof_error(e: ::sasl::client::MechanismError) -> NegotiationError {
    match e {
        ::sasl::client::MechanismError::InvalidSignatureInSuccessResponse
        | ::sasl::client::MechanismError::NoSignatureInSuccessResponse => NegotiationError::ServerProofInvalid,
        other => NegotiationError::Sasl(other.to_string()),
    }
}

pub(super) fn encode(data: &[u8]) -> String {
    if data.is_empty() {
        // RFC 6120 6.4.2: an empty initial response is sent as '='.
        "=".to_owned()
    } else {
        base64::engine::general_purpose::STANDARD.encode(data)
    }
}

pub(super) fn decode(text: &str) -> Result<Vec<u8>, NegotiationError> {
    let t = text.trim();
    if t.is_empty() || t == "=" {
        return Ok(Vec::new());
    }
    base64::engine::general_purpose::STANDARD
        .decode(t)
        .map_err(|_| NegotiationError::Unexpected("SASL data that is not base64".into()))
}

/// The smallest SCRAM iteration count accepted: RFC 5802 §5.1 and RFC 7677 ask for at
/// least 4096; fewer make a password easy to crack from a recorded sign-in.
pub const MIN_SCRAM_ITERATIONS: u32 = 4096;
/// The largest SCRAM iteration count accepted: it caps the CPU a hostile server can make
/// us spend (PBKDF2 at a million rounds takes about a second; 2^32-1 would take hours).
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// The value of attribute `key` of a SCRAM message (`r=...,s=...,i=...`); the GS2
/// header of a client-first message is skipped since it holds no `x=` pairs that
/// matter here.
pub(super) fn scram_attr(msg: &[u8], key: char) -> Option<String> {
    let text = std::str::from_utf8(msg).ok()?;
    text.split(',').find_map(|part| part.strip_prefix(key)?.strip_prefix('=')).map(str::to_owned)
}

/// Checks a SCRAM server-first message before PBKDF2 runs on it (RFC 5802 §5.1,
/// `[m=ext,]r=nonce,s=salt,i=count[,ext...]`): no mandatory extension, every attribute
/// once (the `sasl` crate keeps the last of repeated ones, we must check the same one),
/// the server nonce extends ours, the salt is non-empty base64, the iteration count in
/// [`MIN_SCRAM_ITERATIONS`]..=[`MAX_SCRAM_ITERATIONS`].
pub(super) fn check_server_first(client_nonce: &str, msg: &[u8]) -> Result<(), NegotiationError> {
    use NegotiationError::{ScramExtension, ScramIterations, ScramMalformed, ScramNonce, ScramSalt};
    let text = std::str::from_utf8(msg).map_err(|_| ScramMalformed("not UTF-8"))?;
    let mut attrs: Vec<(&str, &str)> = Vec::new();
    for part in text.split(',') {
        let (key, value) = part.split_once('=').ok_or(ScramMalformed("an attribute without a value"))?;
        if key == "m" {
            return Err(ScramExtension);
        }
        if attrs.iter().any(|(k, _)| *k == key) {
            return Err(ScramMalformed("an attribute given twice"));
        }
        attrs.push((key, value));
    }
    let get = |key: &str| attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let nonce = get("r").ok_or(ScramMalformed("no nonce"))?;
    if !nonce.starts_with(client_nonce) || nonce.len() <= client_nonce.len() {
        return Err(ScramNonce);
    }
    let salt = get("s").ok_or(ScramMalformed("no salt"))?;
    match base64::engine::general_purpose::STANDARD.decode(salt.as_bytes()) {
        Ok(s) if !s.is_empty() => {}
        _ => return Err(ScramSalt),
    }
    let count = get("i").ok_or(ScramMalformed("no iteration count"))?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ScramMalformed("an iteration count that is not a number"));
    }
    // Digits only: a parse failure means more than u64 holds.
    let iterations: u64 = count.parse().unwrap_or(u64::MAX);
    if !(u64::from(MIN_SCRAM_ITERATIONS)..=u64::from(MAX_SCRAM_ITERATIONS)).contains(&iterations) {
        return Err(ScramIterations(iterations));
    }
    Ok(())
}
