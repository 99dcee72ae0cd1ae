//! Arbitrary bytes as sFlow v5 datagrams: the header, samples, flow
//! records and the sampled packet headers inside them — no panic and no
//! leak, whatever the lengths and counts claim; a datagram either decodes
//! whole or is counted as malformed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sflow_collector::collector::{Collector, Encoder};
use sflow_collector::wire::{Datagram, Sample};
use unirec::{RecordBuilder, UrTime};

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = Datagram::new_checked(data) {
        for s in d.samples() {
            let Ok(Sample::Flow(f)) = s else { continue };
            for r in f.records() {
                let _ = r;
            }
        }
    }
    let mut c = Collector::new();
    let enc = Encoder::new(true);
    let mut b = RecordBuilder::new(&enc.template);
    let mut out = Vec::new();
    let mut n = 0usize;
    let r = c.process(None, data, UrTime(0), |rec| {
        n += 1;
        b.clear();
        out.clear();
        enc.encode(rec, &mut b).expect("a decoded sample encodes");
        b.finish(&mut out).expect("a sample record fits");
    });
    match r {
        Ok(k) => assert_eq!(k, n),
        Err(_) => {
            assert_eq!(n, 0);
            assert_eq!(c.stats.malformed, 1);
        }
    }
});
