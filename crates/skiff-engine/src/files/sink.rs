//! Where a received stream's bytes go: one file's `.part` ([`PartFile`]), or a batch's
//! run of small files cut apart as they arrive ([`PackWriter`]).

use std::io;

use super::{PackWriter, PartFile};

/// The receiving side's writer for one stream.
#[derive(Debug)]
pub enum Sink {
    File(PartFile),
    Pack(PackWriter),
}

impl Sink {
    /// Takes the stream's next bytes.
    pub async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(f) => f.write(data).await,
            Sink::Pack(p) => p.write(data).await,
        }
    }

    /// Bytes of the stream written so far (a file's: from its beginning, including
    /// what an earlier attempt left).
    pub fn written(&self) -> u64 {
        match self {
            Sink::File(f) => f.written(),
            Sink::Pack(p) => p.written(),
        }
    }
}
