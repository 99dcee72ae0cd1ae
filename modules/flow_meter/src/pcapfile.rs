//! Classic pcap files (version 2.4, either byte order, microsecond or
//! nanosecond timestamps) read straight from their bytes.
//!
//! `flow_meter -r` maps a regular file into memory and walks it with
//! [`PcapReader`]: no read(2) copying each block out of the page cache, no
//! stdio buffer in between (libpcap's offline path does both, and on a capture
//! in the page cache that copying was a fifth of a `-p basic` run). pcapng,
//! other versions, pipes and `-f` filters stay with libpcap.
//!
//! The rules are libpcap's (`sf-pcap.c`): a record whose captured length
//! exceeds 262 144 bytes is an error; one above the file's snapshot length
//! is cut to it; nanosecond stamps become microseconds; a record cut by
//! the end of the file is "truncated dump file" with what was missing.

use std::fmt;

/// libpcap's largest captured length it accepts in a file (`MAXIMUM_SNAPLEN`).
pub const MAX_CAPLEN: u32 = 262_144;

const GLOBAL_HEADER: usize = 24;
const RECORD_HEADER: usize = 16;

/// A record that cannot be read; the text is libpcap's for the same case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The file ends inside a record header or its data.
    Truncated {
        what: &'static str,
        wanted: usize,
        got: usize,
    },
    /// A captured length libpcap refuses.
    TooLong { caplen: u32 },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated { what, wanted, got } => write!(
                f,
                "truncated dump file; tried to read {wanted} {what} bytes, only got {got}"
            ),
            Error::TooLong { caplen } => write!(
                f,
                "invalid packet capture length {caplen}, bigger than maximum of {MAX_CAPLEN}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// One record: its header fields and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Seconds and microseconds as libpcap reads them: signed 32-bit
    /// (a stamp after January 2038 is negative there, so it is here).
    pub ts_sec: i32,
    pub ts_usec: i32,
    /// Bytes in `data` (after cutting to the snapshot length).
    pub caplen: u32,
    /// The packet's length on the wire.
    pub len: u32,
    pub data: &'a [u8],
}

/// The reading position in a classic pcap file and what its header said.
/// It holds no borrow, so the bytes (a memory map) can live beside it.
#[derive(Debug, Clone)]
pub struct PcapReader {
    pos: usize,
    big_endian: bool,
    nanos: bool,
    snaplen: u32,
    linktype: u32,
}

impl PcapReader {
    /// The reader of `file`'s bytes, or `None` when they are not a classic
    /// pcap 2.4 file (pcapng, an old version, too short, anything else):
    /// libpcap reads or refuses those.
    pub fn new(file: &[u8]) -> Option<PcapReader> {
        let head = file.get(..GLOBAL_HEADER)?;
        let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let (big_endian, nanos) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            _ => return None,
        };
        let r = PcapReader {
            pos: GLOBAL_HEADER,
            big_endian,
            nanos,
            snaplen: 0,
            linktype: 0,
        };
        let u16_at = |i: usize| {
            let b = [head[i], head[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        if (u16_at(4), u16_at(6)) != (2, 4) {
            return None;
        }
        Some(PcapReader {
            snaplen: r.u32_at(head, 16),
            // The upper bits carry FCS information (LT_LINKTYPE in libpcap).
            linktype: r.u32_at(head, 20) & 0x03ff_ffff,
            ..r
        })
    }

    /// The file's link type (LINKTYPE_ number).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The DLT number libpcap reports for the file's link type, for the
    /// link types whose mapping is known here (those flow_meter's parser
    /// reads: Ethernet, BSD loopback, Linux SLL/SLL2, raw IP/IPv4/IPv6);
    /// `None` for the rest.
    pub fn dlt(&self) -> Option<i32> {
        match self.linktype {
            // LINKTYPE_RAW is DLT_RAW, 12 on Linux.
            101 => Some(12),
            0 | 1 | 108 | 113 | 228 | 229 | 276 => Some(self.linktype as i32),
            _ => None,
        }
    }

    /// The offset of the next record.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The file's snapshot length.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    fn u32_at(&self, b: &[u8], i: usize) -> u32 {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if self.big_endian {
            u32::from_be_bytes(w)
        } else {
            u32::from_le_bytes(w)
        }
    }

    /// The next record of `file` (the bytes given to [`PcapReader::new`]),
    /// `None` at the end. After an error the reader stays at the bad record.
    pub fn next<'a>(&mut self, file: &'a [u8]) -> Option<Result<Record<'a>, Error>> {
        let rest = file.get(self.pos..).unwrap_or(&[]);
        if rest.is_empty() {
            return None;
        }
        let Some(h) = rest.get(..RECORD_HEADER) else {
            return Some(Err(Error::Truncated {
                what: "header",
                wanted: RECORD_HEADER,
                got: rest.len(),
            }));
        };
        let ts_sec = self.u32_at(h, 0) as i32;
        let frac = self.u32_at(h, 4) as i32;
        let caplen = self.u32_at(h, 8);
        let len = self.u32_at(h, 12);
        if caplen > MAX_CAPLEN {
            return Some(Err(Error::TooLong { caplen }));
        }
        let stored = caplen as usize;
        let Some(data) = rest.get(RECORD_HEADER..RECORD_HEADER + stored) else {
            return Some(Err(Error::Truncated {
                what: "captured",
                wanted: stored,
                got: rest.len() - RECORD_HEADER,
            }));
        };
        self.pos += RECORD_HEADER + stored;
        // libpcap keeps what fits the snapshot length and skips the rest.
        let kept = if self.snaplen > 0 && caplen > self.snaplen {
            self.snaplen
        } else {
            caplen
        };
        Some(Ok(Record {
            ts_sec,
            ts_usec: if self.nanos { frac / 1000 } else { frac },
            caplen: kept,
            len,
            data: &data[..kept as usize],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(magic: u32, big: bool, snaplen: u32, records: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&w32(magic));
        f.extend_from_slice(&w16(2));
        f.extend_from_slice(&w16(4));
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&w32(snaplen));
        f.extend_from_slice(&w32(1 | 0x1000_0000));
        for &(sec, frac, data, len) in records {
            f.extend_from_slice(&w32(sec));
            f.extend_from_slice(&w32(frac));
            f.extend_from_slice(&w32(data.len() as u32));
            f.extend_from_slice(&w32(len));
            f.extend_from_slice(data);
        }
        f
    }

    fn all(f: &[u8]) -> Vec<Result<Record<'_>, Error>> {
        let mut r = PcapReader::new(f).expect("a pcap file");
        let mut out = Vec::new();
        while let Some(x) = r.next(f) {
            let stop = x.is_err();
            out.push(x);
            if stop {
                break;
            }
        }
        out
    }

    #[test]
    fn both_byte_orders_and_resolutions() {
        let recs: &[(u32, u32, &[u8], u32)] = &[(10, 999_999_000, b"abc", 60), (11, 5_000, b"", 0)];
        for big in [false, true] {
            let ns = file(0xa1b2_3c4d, big, 65535, recs);
            let r = all(&ns);
            assert_eq!(r.len(), 2);
            let first = r[0].as_ref().unwrap();
            assert_eq!((first.ts_sec, first.ts_usec), (10, 999_999));
            assert_eq!((first.caplen, first.len, first.data), (3, 60, &b"abc"[..]));
            assert_eq!(r[1].as_ref().unwrap().ts_usec, 5);
            let us = file(0xa1b2_c3d4, big, 65535, &[(1, 42, b"x", 1)]);
            assert_eq!(PcapReader::new(&us).unwrap().linktype(), 1);
            assert_eq!(PcapReader::new(&us).unwrap().dlt(), Some(1));
            assert_eq!(all(&us)[0].as_ref().unwrap().ts_usec, 42);
        }
    }

    #[test]
    fn other_formats_are_left_to_libpcap() {
        assert!(PcapReader::new(b"").is_none());
        assert!(PcapReader::new(b"definitely not a capture").is_none());
        // pcapng's section header block.
        let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a];
        ng.resize(28, 0);
        assert!(PcapReader::new(&ng).is_none());
        // Version 2.3.
        let mut old = file(0xa1b2_c3d4, false, 65535, &[]);
        old[6] = 3;
        assert!(PcapReader::new(&old).is_none());
    }

    #[test]
    fn a_cut_file_is_a_truncated_dump_as_libpcap_says() {
        let f = file(
            0xa1b2_c3d4,
            false,
            65535,
            &[(1, 0, b"hello", 5), (2, 0, b"world", 5)],
        );
        // Cut inside the second record's data, then inside its header.
        let r = all(&f[..f.len() - 2]);
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1].as_ref().unwrap_err().to_string(),
            "truncated dump file; tried to read 5 captured bytes, only got 3"
        );
        let r = all(&f[..24 + 21 + 7]);
        assert_eq!(
            r[1].as_ref().unwrap_err().to_string(),
            "truncated dump file; tried to read 16 header bytes, only got 7"
        );
        // The header alone: no records, no error.
        assert!(all(&f[..24]).is_empty());
    }

    #[test]
    fn lengths_as_libpcap_treats_them() {
        let big = vec![7u8; 100];
        // Above the snapshot length: cut to it, the next record still found.
        let f = file(
            0xa1b2_c3d4,
            false,
            40,
            &[(1, 0, &big, 1500), (2, 0, b"z", 1)],
        );
        let r = all(&f);
        let first = r[0].as_ref().unwrap();
        assert_eq!((first.caplen, first.data.len(), first.len), (40, 40, 1500));
        // Stamps are signed, as libpcap's: 2^31 seconds is before 1970.
        let f2 = file(0xa1b2_c3d4, false, 0, &[(0x8000_0000, 0, b"", 0)]);
        assert_eq!(all(&f2)[0].as_ref().unwrap().ts_sec, i32::MIN);
        assert_eq!(r[1].as_ref().unwrap().data, b"z");
        // Above libpcap's maximum: an error, not an allocation.
        let mut f = file(0xa1b2_c3d4, false, 65535, &[(1, 0, b"q", 1)]);
        f[24 + 8..24 + 12].copy_from_slice(&(MAX_CAPLEN + 1).to_le_bytes());
        assert_eq!(
            all(&f)[0].as_ref().unwrap_err().to_string(),
            "invalid packet capture length 262145, bigger than maximum of 262144"
        );
    }

    #[test]
    fn any_bytes_after_a_valid_header_are_survived() {
        let head = file(0xa1b2_c3d4, false, 65535, &[]);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..2000 {
            let mut f = head.clone();
            for _ in 0..(n % 97) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                f.push((state >> 24) as u8 % if n % 3 == 0 { 4 } else { 255 });
            }
            let _ = all(&f);
        }
    }
}
