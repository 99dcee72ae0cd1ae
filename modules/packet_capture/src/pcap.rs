//! Classic pcap files (microsecond timestamps, Ethernet), written as
//! libpcap writes them, so that tcpdump, tshark and Wireshark open them.

use std::io::{self, Write};

/// LINKTYPE_ETHERNET.
pub const DLT_EN10MB: u32 = 1;

/// Writes a pcap file into `W`.
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header (host byte order, as libpcap does).
    pub fn new(mut out: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut h = Vec::with_capacity(24);
        h.extend(0xA1B2_C3D4u32.to_ne_bytes());
        h.extend(2u16.to_ne_bytes());
        h.extend(4u16.to_ne_bytes());
        h.extend(0i32.to_ne_bytes());
        h.extend(0u32.to_ne_bytes());
        h.extend(snaplen.to_ne_bytes());
        h.extend(DLT_EN10MB.to_ne_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// One packet record.
    pub fn write(&mut self, secs: u32, micros: u32, wire_len: u32, data: &[u8]) -> io::Result<()> {
        let caplen = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet over 4 GiB"))?;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_ne_bytes());
        h[4..8].copy_from_slice(&micros.to_ne_bytes());
        h[8..12].copy_from_slice(&caplen.to_ne_bytes());
        h[12..16].copy_from_slice(&wire_len.max(caplen).to_ne_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_libpcaps() {
        let mut w = PcapWriter::new(Vec::new(), 65535).unwrap();
        w.write(1, 2, 60, &[0xAA; 3]).unwrap();
        let b = w.into_inner().unwrap();
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(&b[0..4], &0xA1B2_C3D4u32.to_ne_bytes());
        assert_eq!(&b[20..24], &1u32.to_ne_bytes());
        assert_eq!(&b[32..36], &3u32.to_ne_bytes());
        assert_eq!(&b[36..40], &60u32.to_ne_bytes());
    }
}
