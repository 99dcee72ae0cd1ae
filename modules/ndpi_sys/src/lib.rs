//! The few calls of nDPI 4.2 (Debian's `libndpi-dev`) that flow_meter's
//! `app` plugin makes, declared by hand in [`ffi`], behind a safe API:
//! [`Detector`] (one detection module: protocol and category names, host
//! name matching) and [`Flow`] (nDPI's per-flow state, freed on drop).
//!
//! Every `unsafe` block of the workspace's nDPI use is in this file, each
//! with the reason it holds. The layout-sensitive pieces are checked by the
//! tests against a C shim compiled with the installed header (`src/shim.c`):
//! the by-value `ndpi_protocol` return, the bitmask size, and the header's
//! API version against the loaded library's. The one struct field read
//! without an nDPI function (the flow's confidence) is read by the shim, so
//! no offset is hard-coded here.
//!
//! Use from one thread at a time: a [`Detector`] and its flows are `Send`
//! but not `Sync`. Module set-up and tear-down are serialised by a lock, as
//! nDPI asks (its initialisation must not run in parallel).

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::{Mutex, OnceLock};

/// The raw declarations (from `/usr/include/ndpi/ndpi_api.h`, 4.2).
#[allow(non_camel_case_types)]
pub mod ffi {
    use std::ffi::{c_char, c_int, c_uint, c_void};

    /// `struct ndpi_detection_module_struct` (opaque).
    #[repr(C)]
    pub struct ndpi_detection_module_struct {
        _private: [u8; 0],
    }

    /// `struct ndpi_flow_struct` (opaque; its size comes from
    /// `ndpi_detection_get_sizeof_ndpi_flow_struct`).
    #[repr(C)]
    pub struct ndpi_flow_struct {
        _private: [u8; 0],
    }

    /// `ndpi_protocol`: two 16-bit ids and the category enum (an `int`).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ndpi_protocol {
        pub master_protocol: u16,
        pub app_protocol: u16,
        pub category: c_uint,
    }

    /// `ndpi_protocol_match_result`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct ndpi_protocol_match_result {
        pub protocol_id: u32,
        pub protocol_category: c_uint,
        pub protocol_breed: c_uint,
    }

    /// `NDPI_PROTOCOL_BITMASK`: `NDPI_NUM_BITS` (512) bits in 32-bit words.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct NDPI_PROTOCOL_BITMASK {
        pub fds_bits: [u32; 512 / 32],
    }

    /// `ndpi_no_prefs` of `ndpi_prefs`.
    pub const NDPI_NO_PREFS: u32 = 0;
    /// `NDPI_PROTOCOL_NUM_CATEGORIES` of `ndpi_protocol_category_t`.
    pub const NDPI_PROTOCOL_NUM_CATEGORIES: c_uint = 106;

    extern "C" {
        pub fn ndpi_init_detection_module(prefs: u32) -> *mut ndpi_detection_module_struct;
        pub fn ndpi_set_protocol_detection_bitmask2(
            m: *mut ndpi_detection_module_struct,
            bitmask: *const NDPI_PROTOCOL_BITMASK,
        );
        pub fn ndpi_finalize_initialization(m: *mut ndpi_detection_module_struct);
        pub fn ndpi_exit_detection_module(m: *mut ndpi_detection_module_struct);
        pub fn ndpi_get_api_version() -> u16;
        pub fn ndpi_get_num_supported_protocols(m: *mut ndpi_detection_module_struct) -> c_uint;
        pub fn ndpi_get_proto_name(m: *mut ndpi_detection_module_struct, id: u16) -> *mut c_char;
        pub fn ndpi_category_get_name(
            m: *mut ndpi_detection_module_struct,
            category: c_uint,
        ) -> *const c_char;
        pub fn ndpi_detection_get_sizeof_ndpi_flow_struct() -> u32;
        pub fn ndpi_calloc(count: std::ffi::c_ulong, size: usize) -> *mut c_void;
        pub fn ndpi_free_flow(flow: *mut ndpi_flow_struct);
        pub fn ndpi_detection_process_packet(
            m: *mut ndpi_detection_module_struct,
            flow: *mut ndpi_flow_struct,
            packet: *const u8,
            packetlen: u16,
            packet_time_ms: u64,
        ) -> ndpi_protocol;
        pub fn ndpi_detection_giveup(
            m: *mut ndpi_detection_module_struct,
            flow: *mut ndpi_flow_struct,
            enable_guess: u8,
            protocol_was_guessed: *mut u8,
        ) -> ndpi_protocol;
        pub fn ndpi_get_flow_info(
            flow: *const ndpi_flow_struct,
            proto: *const ndpi_protocol,
        ) -> *const c_char;
        pub fn ndpi_match_string_subprotocol(
            m: *mut ndpi_detection_module_struct,
            string_to_match: *mut c_char,
            string_to_match_len: c_uint,
            ret_match: *mut ndpi_protocol_match_result,
        ) -> c_int;
    }

    // The shim (src/shim.c), compiled against the installed header.
    extern "C" {
        pub fn nemea_ndpi_flow_confidence(flow: *const ndpi_flow_struct) -> c_uint;
        pub fn nemea_ndpi_header_api_version() -> c_uint;
        pub fn nemea_ndpi_bitmask_size() -> c_uint;
        pub fn nemea_ndpi_protocol_probe() -> ndpi_protocol;
    }
}

/// Why nDPI cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("nDPI could not set up its detection module (out of memory?)")]
    Init,
    #[error(
        "the nDPI library loaded (API {loaded}) is not the one flow_meter was built with (API {built}): rebuild flow_meter against the installed libndpi-dev"
    )]
    Version { loaded: u16, built: u32 },
    #[error("nDPI could not allocate a flow (out of memory)")]
    Alloc,
}

/// A classification: nDPI's master (carrier) and application protocol ids
/// and its category. Id 0 is "Unknown".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Protocol {
    pub master: u16,
    pub app: u16,
    pub category: u32,
}

impl Protocol {
    pub fn is_unknown(&self) -> bool {
        self.master == 0 && self.app == 0
    }

    fn from_ffi(p: ffi::ndpi_protocol) -> Protocol {
        Protocol {
            master: p.master_protocol,
            app: p.app_protocol,
            category: p.category,
        }
    }

    fn to_ffi(self) -> ffi::ndpi_protocol {
        ffi::ndpi_protocol {
            master_protocol: self.master,
            app_protocol: self.app,
            category: self.category,
        }
    }
}

/// How a classification was reached (nDPI's `ndpi_confidence_t`, same
/// numbers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Confidence {
    #[default]
    Unknown = 0,
    /// The L4 ports alone.
    ByPort = 1,
    /// The addresses alone (nDPI's lists of networks).
    ByIp = 2,
    /// Another session's result (correlation).
    Correlation = 3,
    /// The payload (deep packet inspection).
    Dpi = 4,
}

impl Confidence {
    fn from_raw(v: u32) -> Confidence {
        match v {
            1 => Confidence::ByPort,
            2 => Confidence::ByIp,
            3 => Confidence::Correlation,
            4 => Confidence::Dpi,
            _ => Confidence::Unknown,
        }
    }
}

/// nDPI's set-up and tear-down must not run in parallel.
static SETUP: Mutex<()> = Mutex::new(());

/// An nDPI detection module with every protocol enabled.
pub struct Detector {
    module: NonNull<ffi::ndpi_detection_module_struct>,
    flow_size: usize,
    scratch: Vec<u8>,
}

/// The names of nDPI's protocols and categories, read from the first
/// module: every module of the library has the same ones (no custom
/// protocols are loaded), so they are kept once for the process and can be
/// held by exported flows (`&'static str`).
struct Names {
    protocols: Vec<Box<str>>,
    categories: Vec<Box<str>>,
}

static NAMES: OnceLock<Names> = OnceLock::new();

// SAFETY: the module is plain heap memory owned by this value and reached
// only through `&mut self` (or `&self` for read-only name lookups that nDPI
// does not mutate); nDPI keeps no thread-local state for it. It is not Sync.
#[allow(unsafe_code)]
unsafe impl Send for Detector {}

/// Copies a C string owned by nDPI into a Rust string (lossy UTF-8).
fn owned(ptr: *const std::ffi::c_char) -> Box<str> {
    if ptr.is_null() {
        return "".into();
    }
    // SAFETY: nDPI returns NUL-terminated strings that live as long as the
    // module (names) or the flow (flow info); the caller holds either.
    #[allow(unsafe_code)]
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_string_lossy().into()
}

impl Detector {
    /// Sets up a module with every protocol dissector enabled.
    pub fn new() -> Result<Detector, Error> {
        // SAFETY: no arguments; returns the library's API version.
        #[allow(unsafe_code)]
        let (loaded, built) = unsafe {
            (
                ffi::ndpi_get_api_version(),
                ffi::nemea_ndpi_header_api_version(),
            )
        };
        if u32::from(loaded) != built {
            return Err(Error::Version { loaded, built });
        }
        let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `ndpi_no_prefs` is a valid preference set; the result is
        // checked for NULL below.
        #[allow(unsafe_code)]
        let raw = unsafe { ffi::ndpi_init_detection_module(ffi::NDPI_NO_PREFS) };
        let module = NonNull::new(raw).ok_or(Error::Init)?;
        let all = ffi::NDPI_PROTOCOL_BITMASK {
            fds_bits: [u32::MAX; 16],
        };
        // SAFETY: `module` was just returned by nDPI and is not yet
        // finalised, as these two calls require; the bitmask is a valid
        // `NDPI_PROTOCOL_BITMASK` (size checked by a test against the header)
        // that nDPI copies.
        #[allow(unsafe_code)]
        unsafe {
            ffi::ndpi_set_protocol_detection_bitmask2(module.as_ptr(), &all);
            ffi::ndpi_finalize_initialization(module.as_ptr());
        }
        NAMES.get_or_init(|| {
            // SAFETY: a finalised module; nDPI returns names it owns (or
            // NULL, which `owned` maps to "") for any id / category number;
            // they are copied at once.
            #[allow(unsafe_code)]
            unsafe {
                let n =
                    ffi::ndpi_get_num_supported_protocols(module.as_ptr()).min(u32::from(u16::MAX));
                Names {
                    protocols: (0..n)
                        .map(|id| owned(ffi::ndpi_get_proto_name(module.as_ptr(), id as u16)))
                        .collect(),
                    categories: (0..ffi::NDPI_PROTOCOL_NUM_CATEGORIES)
                        .map(|c| owned(ffi::ndpi_category_get_name(module.as_ptr(), c)))
                        .collect(),
                }
            }
        });
        // SAFETY: no arguments; the size of the library's flow struct.
        #[allow(unsafe_code)]
        let flow_size = unsafe { ffi::ndpi_detection_get_sizeof_ndpi_flow_struct() } as usize;
        Ok(Detector {
            module,
            flow_size,
            scratch: Vec::new(),
        })
    }

    /// The size of nDPI's per-flow state in bytes (what [`Detector::new_flow`]
    /// allocates, before nDPI's own allocations for some protocols).
    pub fn flow_size(&self) -> usize {
        self.flow_size
    }

    /// The name of protocol `id` (`"Unknown"` for 0, `""` past the table).
    pub fn protocol_name(&self, id: u16) -> &'static str {
        protocol_name(id)
    }

    /// The name of category `c` (`""` for numbers nDPI does not name).
    pub fn category_name(&self, c: u32) -> &'static str {
        category_name(c)
    }

    /// A fresh, zeroed per-flow state.
    pub fn new_flow(&self) -> Result<Flow, Error> {
        // SAFETY: nDPI's calloc returns zeroed memory of the size nDPI itself
        // reports for its flow struct, or NULL (checked); a zeroed flow is
        // the initial state nDPI expects.
        #[allow(unsafe_code)]
        let raw = unsafe { ffi::ndpi_calloc(1, self.flow_size) };
        let ptr = NonNull::new(raw.cast::<ffi::ndpi_flow_struct>()).ok_or(Error::Alloc)?;
        Ok(Flow { ptr })
    }

    /// Feeds one packet of the flow, from its IP header (`l3`: the IP header
    /// and what follows, at most 65535 bytes are read) and returns what nDPI
    /// knows so far.
    pub fn process(&mut self, flow: &mut Flow, l3: &[u8], time_ms: u64) -> Protocol {
        let len = l3.len().min(usize::from(u16::MAX)) as u16;
        // SAFETY: the module is finalised and exclusively borrowed; `flow`
        // is a live nDPI flow state exclusively borrowed; nDPI reads at most
        // `len` bytes from `l3`, which holds at least that many (nDPI checks
        // the headers' lengths against `len`).
        #[allow(unsafe_code)]
        let p = unsafe {
            ffi::ndpi_detection_process_packet(
                self.module.as_ptr(),
                flow.ptr.as_ptr(),
                l3.as_ptr(),
                len,
                time_ms,
            )
        };
        Protocol::from_ffi(p)
    }

    /// Ends detection of the flow: nDPI's final answer, guessed from the
    /// ports and addresses when the payload told nothing.
    pub fn giveup(&mut self, flow: &mut Flow) -> Protocol {
        let mut guessed = 0u8;
        // SAFETY: as in `process`; `guessed` is a valid out-pointer.
        #[allow(unsafe_code)]
        let p = unsafe {
            ffi::ndpi_detection_giveup(self.module.as_ptr(), flow.ptr.as_ptr(), 1, &mut guessed)
        };
        Protocol::from_ffi(p)
    }

    /// The application nDPI associates with a host name (`www.google.com`
    /// → Google), with its category.
    pub fn host_protocol(&mut self, host: &[u8]) -> Option<(u16, u32)> {
        if host.is_empty() || host.len() > 255 {
            return None;
        }
        // nDPI takes a mutable pointer: give it a copy.
        self.scratch.clear();
        self.scratch.extend_from_slice(host);
        self.scratch.push(0);
        let mut result = ffi::ndpi_protocol_match_result::default();
        // SAFETY: a finalised module; the buffer holds `host.len()` bytes
        // plus a NUL and is ours to modify; `result` is a valid out-pointer.
        #[allow(unsafe_code)]
        let id = unsafe {
            ffi::ndpi_match_string_subprotocol(
                self.module.as_ptr(),
                self.scratch.as_mut_ptr().cast(),
                host.len() as u32,
                &mut result,
            )
        };
        (id > 0 && id <= i32::from(u16::MAX)).then_some((id as u16, result.protocol_category))
    }
}

impl Drop for Detector {
    fn drop(&mut self) {
        let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the module came from `ndpi_init_detection_module` and is
        // released once, here; flows do not refer to it (freeing a flow
        // touches only the flow).
        #[allow(unsafe_code)]
        unsafe {
            ffi::ndpi_exit_detection_module(self.module.as_ptr())
        }
    }
}

/// The name of nDPI protocol `id` (`"Unknown"` for 0; `""` past nDPI's
/// table or before any [`Detector`] was made).
pub fn protocol_name(id: u16) -> &'static str {
    NAMES
        .get()
        .and_then(|n| n.protocols.get(usize::from(id)))
        .map_or("", |s| s)
}

/// The name of nDPI category `c` (`""` for numbers nDPI does not name).
pub fn category_name(c: u32) -> &'static str {
    NAMES
        .get()
        .and_then(|n| n.categories.get(c as usize))
        .map_or("", |s| s)
}

/// nDPI's state for one flow being classified (about 700 bytes, plus what
/// some dissectors allocate); freed on drop.
pub struct Flow {
    ptr: NonNull<ffi::ndpi_flow_struct>,
}

// SAFETY: the flow state is heap memory owned by this value alone, reached
// only through `&self`/`&mut self`; nDPI ties it to no thread.
#[allow(unsafe_code)]
unsafe impl Send for Flow {}

impl Flow {
    /// How nDPI reached its current classification of the flow.
    pub fn confidence(&self) -> Confidence {
        // SAFETY: a live flow state; the shim reads one field of it.
        #[allow(unsafe_code)]
        let v = unsafe { ffi::nemea_ndpi_flow_confidence(self.ptr.as_ptr()) };
        Confidence::from_raw(v)
    }

    /// The host name nDPI found for the flow under `proto` (DNS query
    /// name, HTTP Host, TLS/QUIC server name), if any.
    pub fn host_name(&self, proto: Protocol) -> Option<Box<str>> {
        let p = proto.to_ffi();
        // SAFETY: a live flow state and a valid protocol value; the result
        // is NULL or points into the flow's own buffer, copied at once.
        #[allow(unsafe_code)]
        let s = owned(unsafe { ffi::ndpi_get_flow_info(self.ptr.as_ptr(), &p) });
        (!s.is_empty()).then_some(s)
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        // SAFETY: allocated by nDPI's calloc in `new_flow`, released once;
        // `ndpi_free_flow` frees what nDPI allocated inside it, then the
        // struct with nDPI's free.
        #[allow(unsafe_code)]
        unsafe {
            ffi::ndpi_free_flow(self.ptr.as_ptr())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_agree_with_the_installed_header() {
        // SAFETY: argument-less shim functions.
        #[allow(unsafe_code)]
        let (probe, bitmask, built, loaded) = unsafe {
            (
                ffi::nemea_ndpi_protocol_probe(),
                ffi::nemea_ndpi_bitmask_size(),
                ffi::nemea_ndpi_header_api_version(),
                ffi::ndpi_get_api_version(),
            )
        };
        assert_eq!(
            probe,
            ffi::ndpi_protocol {
                master_protocol: 0x1234,
                app_protocol: 0x5678,
                category: 9
            },
            "ndpi_protocol returned by value"
        );
        assert_eq!(
            bitmask as usize,
            std::mem::size_of::<ffi::NDPI_PROTOCOL_BITMASK>()
        );
        assert_eq!(std::mem::size_of::<ffi::ndpi_protocol>(), 8);
        assert_eq!(u32::from(loaded), built);
    }

    #[test]
    fn names_of_protocols_and_categories() {
        let d = Detector::new().expect("nDPI");
        assert_eq!(d.protocol_name(0), "Unknown");
        assert_eq!(d.protocol_name(5), "DNS");
        assert_eq!(d.protocol_name(7), "HTTP");
        assert_eq!(d.protocol_name(91), "TLS");
        assert_eq!(d.protocol_name(u16::MAX), "");
        assert_eq!(d.category_name(5), "Web");
        assert_eq!(d.category_name(1_000), "");
        assert!(d.flow_size() > 100);
    }

    #[test]
    fn host_names_map_to_applications() {
        let mut d = Detector::new().expect("nDPI");
        let google = d.host_protocol(b"www.google.com").expect("Google");
        assert_eq!(d.protocol_name(google.0), "Google");
        assert_eq!(d.category_name(google.1), "Web");
        assert_eq!(d.host_protocol(b"www.example.test"), None);
        assert_eq!(d.host_protocol(b""), None);
    }

    /// An IPv4/UDP packet from 198.51.100.2:53000 to 198.51.100.1:53 with
    /// `payload` (checksums zero: nDPI does not check them).
    fn udp4(payload: &[u8], sport: u16, dport: u16) -> Vec<u8> {
        let total = (20 + 8 + payload.len()) as u16;
        let mut p = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0];
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&[198, 51, 100, 2, 198, 51, 100, 1]);
        p.extend_from_slice(&sport.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(payload);
        p
    }

    fn dns_query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    #[test]
    fn a_dns_query_is_classified_by_its_payload() {
        let mut d = Detector::new().expect("nDPI");
        let mut f = d.new_flow().expect("flow");
        let p = d.process(&mut f, &udp4(&dns_query("www.google.com"), 53000, 53), 1000);
        assert_eq!(d.protocol_name(p.master), "DNS", "{p:?}");
        assert_eq!(d.protocol_name(p.app), "Google", "{p:?}");
        assert_eq!(f.confidence(), Confidence::Dpi);
        assert_eq!(f.host_name(p).as_deref(), Some("www.google.com"));
    }

    #[test]
    fn an_unknown_payload_is_guessed_by_port_at_giveup() {
        let mut d = Detector::new().expect("nDPI");
        let mut f = d.new_flow().expect("flow");
        let pkt = udp4(&[0xffu8; 40], 40000, 123);
        let p = d.process(&mut f, &pkt, 1000);
        assert!(p.is_unknown(), "{p:?} {:?}", f.confidence());
        let g = d.giveup(&mut f);
        assert_eq!(d.protocol_name(g.app.max(g.master)), "NTP", "{g:?}");
        assert_eq!(f.confidence(), Confidence::ByPort);
    }

    #[test]
    fn garbage_and_short_packets_are_survived() {
        let mut d = Detector::new().expect("nDPI");
        let mut seed = 0x1234_5678_u64;
        for n in 0..2000usize {
            let mut f = d.new_flow().expect("flow");
            for k in 0..4 {
                let len = (n * 7 + k * 13) % 200;
                let mut pkt: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed as u8
                    })
                    .collect();
                // Half of them look like IPv4/IPv6 headers.
                if let Some(b) = pkt.first_mut() {
                    if n % 2 == 0 {
                        *b = if n % 4 == 0 { 0x45 } else { 0x60 };
                    }
                }
                d.process(&mut f, &pkt, n as u64);
            }
            d.giveup(&mut f);
        }
        let mut f = d.new_flow().expect("flow");
        d.process(&mut f, &[], 0);
    }
}
